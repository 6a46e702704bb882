// Fd: the one owner of a descriptor closes it exactly once.
#include "ferry/fd.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <type_traits>
#include <utility>

#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using FdTest = test::FdLeakCheck;

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) >= 0;
}

// A pipe whose two ends are owned by Fd objects from the start.
std::pair<Fd, Fd> make_pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    return {Fd(fds[0]), Fd(fds[1])};
}

static_assert(!std::is_copy_constructible_v<Fd>);
static_assert(!std::is_copy_assignable_v<Fd>);
static_assert(std::is_nothrow_move_constructible_v<Fd>);
static_assert(std::is_nothrow_move_assignable_v<Fd>);

TEST_F(FdTest, DefaultIsEmptyAndFalse) {
    const Fd fd;
    EXPECT_EQ(fd.get(), -1);
    EXPECT_FALSE(fd);
}

TEST_F(FdTest, DestructorClosesTheDescriptor) {
    int number = -1;
    {
        auto [reader, writer] = make_pipe();
        number = reader.get();
        EXPECT_TRUE(reader);
        EXPECT_TRUE(is_open(number));
    }
    errno = 0;
    EXPECT_FALSE(is_open(number));
    EXPECT_EQ(errno, EBADF);
}

TEST_F(FdTest, ClosesExactlyOnceAcrossMovesAndReset) {
    auto [reader, writer] = make_pipe();
    const int number = reader.get();
    Fd moved(std::move(reader));
    Fd assigned;
    assigned = std::move(moved);
    EXPECT_EQ(assigned.get(), number);
    assigned.reset();
    EXPECT_FALSE(assigned);
    EXPECT_FALSE(is_open(number));
    // A second reset, and the destructors of the moved-from objects, must not
    // close the number again: open something new, which reuses the lowest
    // free number, and check it survives them.
    auto [again, again_writer] = make_pipe();
    ASSERT_EQ(again.get(), number);
    assigned.reset();
    moved.reset();
    reader.reset();
    EXPECT_TRUE(is_open(number));
}

TEST_F(FdTest, MovedFromIsEmpty) {
    auto [reader, writer] = make_pipe();
    const int number = reader.get();
    Fd other(std::move(reader));
    EXPECT_FALSE(reader);  // NOLINT(bugprone-use-after-move): the state after a move is the point
    EXPECT_EQ(reader.get(), -1);
    EXPECT_EQ(other.get(), number);
    EXPECT_TRUE(is_open(number));
}

TEST_F(FdTest, MoveAssignmentClosesTheOldDescriptor) {
    auto [a, a_writer] = make_pipe();
    auto [b, b_writer] = make_pipe();
    const int old = a.get();
    const int kept = b.get();
    a = std::move(b);
    EXPECT_FALSE(is_open(old));
    EXPECT_EQ(a.get(), kept);
    EXPECT_TRUE(is_open(kept));
}

TEST_F(FdTest, SelfMoveAssignmentKeepsTheDescriptor) {
    auto [reader, writer] = make_pipe();
    const int number = reader.get();
    Fd& same = reader;
    reader = std::move(same);
    EXPECT_EQ(reader.get(), number);
    EXPECT_TRUE(is_open(number));
}

TEST_F(FdTest, ReleaseGivesUpOwnershipWithoutClosing) {
    auto [reader, writer] = make_pipe();
    const int number = reader.get();
    const int released = reader.release();
    EXPECT_EQ(released, number);
    EXPECT_FALSE(reader);
    reader.reset();
    EXPECT_TRUE(is_open(number));
    EXPECT_EQ(::close(released), 0);
}

TEST_F(FdTest, ResetClosesTheOldAndAdoptsTheNew) {
    auto [reader, writer] = make_pipe();
    const int old = reader.get();
    const int adopted = writer.release();
    reader.reset(adopted);
    EXPECT_FALSE(is_open(old));
    EXPECT_EQ(reader.get(), adopted);
    EXPECT_TRUE(is_open(adopted));
}

}  // namespace
}  // namespace ferry
