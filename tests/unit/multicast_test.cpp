// Multicast on Socket: the options set and read back, joins and leaves with
// their errors, and delivery over loopback (IPv4 only: lo carries IPv4
// multicast, while IPv6 multicast needs an interface with the MULTICAST flag,
// which lo lacks, so IPv6 is tested as far as memberships go). Over lo every
// datagram comes back through lo itself, so TTL and loopback make no
// difference there; the e2e tests show them between two hosts.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <set>
#include <string>
#include <system_error>

#include "ferry/error.hpp"
#include "ferry/socket.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using test::kGuard;

using MulticastGroupTest = test::FdLeakCheck;
using MulticastInterfaceTest = test::FdLeakCheck;
using MulticastOptionTest = test::FdLeakCheck;
using MulticastMembershipTest = test::FdLeakCheck;
using MulticastDeliveryTest = test::FdLeakCheck;

/// A group of the administratively scoped range, distinct per process and per
/// test, so that tests running side by side never share a membership.
Address group4(int k) {
    const int pid = static_cast<int>(::getpid());
    return Address::ip("239.254." + std::to_string(pid % 250) + "." + std::to_string(k), 0);
}
Address ssm_group4(int k) {
    const int pid = static_cast<int>(::getpid());
    return Address::ip("232.254." + std::to_string(pid % 250) + "." + std::to_string(k), 0);
}
Address group6(int k) {
    const int pid = static_cast<int>(::getpid());
    return Address::ip("ff15::" + std::to_string(pid % 10000) + ":" + std::to_string(k), 0);
}

const MulticastInterface kLo = MulticastInterface::named("lo");

unsigned lo_index() {
    return ::if_nametoindex("lo");
}

/// An IPv4 address (of TEST-NET-3) that no interface of this host holds, found
/// by listing them with getifaddrs(3) rather than assumed.
std::string absent_ipv4() {
    std::set<in_addr_t> held;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) == 0) {
        for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next)
            if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET)
                held.insert(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
        ::freeifaddrs(list);
    }
    for (int last = 1; last < 255; ++last) {
        const std::string text = "203.0.113." + std::to_string(last);
        in_addr a{};
        ::inet_pton(AF_INET, text.c_str(), &a);
        if (held.count(a.s_addr) == 0) return text;
    }
    ADD_FAILURE() << "every address of 203.0.113.0/24 is on this host";
    return "203.0.113.1";
}

/// Expects `call` to throw Error with errno `err` and exactly the text `what`.
template <class Call>
void expect_error(Call&& call, int err, const std::string& what) {
    try {
        call();
        ADD_FAILURE() << "no error; expected: " << what;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::error_code(err, std::system_category())) << e.what();
        EXPECT_EQ(std::string(e.what()), what);
    }
}

/// A receiver for `group`: bound to the group itself on a port the kernel picks,
/// taking only what it joined, and bounded by kGuard.
Socket receiver_for(const Address& group) {
    Socket s(group.family(), SOCK_DGRAM);
    s.set_reuse_address(true);
    s.set_multicast_all(false);
    s.bind(group);
    s.set_timeout(kGuard);
    return s;
}

/// A sender whose multicast leaves by lo, optionally from one of lo's addresses.
Socket lo_sender(const char* from = nullptr) {
    Socket s(AF_INET, SOCK_DGRAM);
    if (from != nullptr) s.bind(Address::ip(from, 0));
    s.set_multicast_interface(kLo);
    return s;
}

std::string receive(Socket& s, Address* from = nullptr) {
    char buffer[256];
    const Received got = *s.recvfrom(buffer, sizeof buffer);
    if (from != nullptr) *from = got.from;
    return std::string(buffer, got.size);
}

TEST_F(MulticastGroupTest, MulticastRangesOfBothFamilies) {
    for (const char* yes : {"224.0.0.1", "232.1.2.3", "239.255.255.255", "ff02::1", "ff0e::1:3"})
        EXPECT_TRUE(is_multicast_group(Address::ip(yes, 0))) << yes;
    for (const char* no : {"223.255.255.255", "240.0.0.0", "127.0.0.1", "0.0.0.0", "fe80::1", "::1",
                           "::ffff:239.1.2.3"})
        EXPECT_FALSE(is_multicast_group(Address::ip(no, 0))) << no;
    EXPECT_FALSE(is_multicast_group(Address::unix_path("/tmp/x")));
    EXPECT_FALSE(is_multicast_group(Address()));
}

TEST_F(MulticastInterfaceTest, ParseTellsAddressesFromNames) {
    EXPECT_TRUE(MulticastInterface::parse("").is_any());
    EXPECT_EQ(MulticastInterface().index(), 0U);
    EXPECT_EQ(MulticastInterface().to_string(), "any interface");

    const MulticastInterface by_name = MulticastInterface::parse("lo");
    EXPECT_FALSE(by_name.is_any());
    EXPECT_EQ(by_name.ipv4_address(), nullptr);
    EXPECT_EQ(by_name.to_string(), "lo");
    EXPECT_EQ(by_name.index(), lo_index());

    const MulticastInterface by_address = MulticastInterface::parse("127.0.0.1");
    ASSERT_NE(by_address.ipv4_address(), nullptr);
    EXPECT_EQ(by_address.ipv4_address()->host(), "127.0.0.1");
    EXPECT_EQ(by_address.to_string(), "127.0.0.1");
    EXPECT_EQ(by_address.index(), lo_index());

    const MulticastInterface by_index = MulticastInterface::with_index(lo_index());
    EXPECT_EQ(by_index.to_string(), "interface " + std::to_string(lo_index()));
    EXPECT_EQ(by_index.index(), lo_index());
}

TEST_F(MulticastInterfaceTest, IPv6AddressNamesTheInterfaceHoldingIt) {
    const MulticastInterface v6 = MulticastInterface::parse("::1");
    EXPECT_EQ(v6.ipv4_address(), nullptr);
    EXPECT_EQ(v6.to_string(), "::1");
    EXPECT_EQ(v6.index(), lo_index());
}

TEST_F(MulticastInterfaceTest, UnknownInterfaceSaysWhatWasLookedFor) {
    expect_error([] { (void)MulticastInterface::named("ferry-nosuch0").index(); }, ENODEV,
                 "interface ferry-nosuch0: No such device");
    const std::string absent = absent_ipv4();
    expect_error([&] { (void)MulticastInterface::parse(absent).index(); }, ENODEV,
                 "interface with address " + absent + ": No such device");
    // Longer than IFNAMSIZ: no interface can have it.
    expect_error([] { (void)MulticastInterface::named(std::string(40, 'x')).index(); }, ENODEV,
                 "interface " + std::string(40, 'x') + ": No such device");
}

// Found by the address fuzz harness: if_nametoindex reads a C string, so "lo\0x" named lo.
TEST_F(MulticastInterfaceTest, NameWithANulByteIsNoInterface) {
    using namespace std::string_literals;
    EXPECT_THROW((void)MulticastInterface::named("lo\0x"s).index(), Error);
    EXPECT_THROW((void)MulticastInterface::parse("lo\0"s).index(), Error);
    EXPECT_EQ(MulticastInterface::named("lo").index(), lo_index());
}

TEST_F(MulticastOptionTest, TtlAndLoopDefaultsAndReadBack) {
    for (const int family : {AF_INET, AF_INET6}) {
        SCOPED_TRACE(family_name(family));
        Socket s(family, SOCK_DGRAM);
        EXPECT_EQ(s.multicast_ttl(), 1);
        EXPECT_TRUE(s.multicast_loop());
        for (const int ttl : {0, 32, 255}) {
            s.set_multicast_ttl(ttl);
            EXPECT_EQ(s.multicast_ttl(), ttl);
        }
        s.set_multicast_loop(false);
        EXPECT_FALSE(s.multicast_loop());
        s.set_multicast_loop(true);
        EXPECT_TRUE(s.multicast_loop());
    }
    // The option the kernel holds, read without the named getter.
    Socket v4(AF_INET, SOCK_DGRAM);
    v4.set_multicast_ttl(7);
    EXPECT_EQ(v4.get_option<int>(IPPROTO_IP, IP_MULTICAST_TTL), 7);
    Socket v6(AF_INET6, SOCK_DGRAM);
    v6.set_multicast_ttl(9);
    EXPECT_EQ(v6.get_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 9);
}

TEST_F(MulticastOptionTest, TtlOutOfRangeNamesTheOption) {
    Socket v4(AF_INET, SOCK_DGRAM);
    expect_error([&] { v4.set_multicast_ttl(300); }, EINVAL,
                 "set IP_MULTICAST_TTL to 300: Invalid argument");
    Socket v6(AF_INET6, SOCK_DGRAM);
    expect_error([&] { v6.set_multicast_ttl(256); }, EINVAL,
                 "set IPV6_MULTICAST_HOPS to 256: Invalid argument");
    EXPECT_EQ(v4.multicast_ttl(), 1);
    EXPECT_EQ(v6.multicast_ttl(), 1);
}

TEST_F(MulticastOptionTest, OutgoingInterfaceReadBack) {
    Socket v4(AF_INET, SOCK_DGRAM);
    v4.set_multicast_interface(MulticastInterface::parse("127.0.0.1"));
    // IP_MULTICAST_IF reads back as the address it was given.
    EXPECT_EQ(v4.get_option<in_addr>(IPPROTO_IP, IP_MULTICAST_IF).s_addr, htonl(INADDR_LOOPBACK));
    v4.set_multicast_interface({});
    EXPECT_EQ(v4.get_option<in_addr>(IPPROTO_IP, IP_MULTICAST_IF).s_addr, htonl(INADDR_ANY));

    Socket v6(AF_INET6, SOCK_DGRAM);
    v6.set_multicast_interface(kLo);
    EXPECT_EQ(v6.get_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_IF), static_cast<int>(lo_index()));
    v6.set_multicast_interface(MulticastInterface::parse("127.0.0.1"));
    EXPECT_EQ(v6.get_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_IF), static_cast<int>(lo_index()));
    v6.set_multicast_interface({});
    EXPECT_EQ(v6.get_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_IF), 0);
}

TEST_F(MulticastOptionTest, UnknownOutgoingInterfaceIsAnError) {
    Socket v4(AF_INET, SOCK_DGRAM);
    expect_error([&] { v4.set_multicast_interface(MulticastInterface::named("ferry-nosuch0")); },
                 ENODEV, "set IP_MULTICAST_IF to ferry-nosuch0: No such device");
    const std::string absent = absent_ipv4();
    expect_error([&] { v4.set_multicast_interface(MulticastInterface::parse(absent)); },
                 EADDRNOTAVAIL,
                 "set IP_MULTICAST_IF to " + absent + ": Cannot assign requested address");
    Socket v6(AF_INET6, SOCK_DGRAM);
    expect_error([&] { v6.set_multicast_interface(MulticastInterface::named("ferry-nosuch0")); },
                 ENODEV, "set IPV6_MULTICAST_IF to ferry-nosuch0: No such device");
}

TEST_F(MulticastMembershipTest, JoinTwiceIsInUseLeaveTwiceIsNotJoined) {
    for (const Address& group : {group4(1), group6(1)}) {
        SCOPED_TRACE(group.host());
        Socket s(group.family(), SOCK_DGRAM);
        s.join_group(group, kLo);
        expect_error([&] { s.join_group(group, kLo); }, EADDRINUSE,
                     "join group " + group.host() + " on lo: Address already in use");
        s.leave_group(group, kLo);
        expect_error([&] { s.leave_group(group, kLo); }, EADDRNOTAVAIL,
                     "leave group " + group.host() + " on lo: Cannot assign requested address");
    }
}

TEST_F(MulticastMembershipTest, InterfaceByIndexAndByAddressIsTheSameMembership) {
    Socket s(AF_INET, SOCK_DGRAM);
    const Address group = group4(2);
    s.join_group(group, MulticastInterface::with_index(lo_index()));
    // The kernel finds the membership by the interface, however it was named.
    s.leave_group(group, MulticastInterface::parse("127.0.0.1"));
    s.join_group(group, MulticastInterface::parse("127.0.0.1"));
    s.leave_group(group, kLo);

    Socket v6(AF_INET6, SOCK_DGRAM);
    v6.join_group(group6(2), MulticastInterface::parse("::1"));
    v6.leave_group(group6(2), MulticastInterface::with_index(lo_index()));
}

TEST_F(MulticastMembershipTest, UnknownInterfaceNamesGroupAndInterface) {
    Socket v4(AF_INET, SOCK_DGRAM);
    const std::string g4 = group4(3).host();
    expect_error([&] { v4.join_group(group4(3), MulticastInterface::named("ferry-nosuch0")); },
                 ENODEV, "join group " + g4 + " on ferry-nosuch0: No such device");
    const std::string absent = absent_ipv4();
    expect_error([&] { v4.join_group(group4(3), MulticastInterface::parse(absent)); }, ENODEV,
                 "join group " + g4 + " on " + absent + ": No such device");
    Socket v6(AF_INET6, SOCK_DGRAM);
    const std::string g6 = group6(3).host();
    expect_error([&] { v6.join_group(group6(3), MulticastInterface::named("ferry-nosuch0")); },
                 ENODEV, "join group " + g6 + " on ferry-nosuch0: No such device");
}

TEST_F(MulticastMembershipTest, AddressThatIsNotAGroupIsRefusedBeforeTheKernel) {
    Socket v4(AF_INET, SOCK_DGRAM);
    expect_error([&] { v4.join_group(Address::ip("127.0.0.1", 0), kLo); }, EINVAL,
                 "join group 127.0.0.1 on lo (not a multicast address): Invalid argument");
    expect_error(
        [&] { v4.join_source_group(Address::ip("10.1.2.3", 0), Address::ip("127.0.0.1", 0)); },
        EINVAL, "join group 10.1.2.3 source 127.0.0.1 (not a multicast address): Invalid argument");
    Socket v6(AF_INET6, SOCK_DGRAM);
    expect_error([&] { v6.leave_group(Address::ip("::1", 0), kLo); }, EINVAL,
                 "leave group ::1 on lo (not a multicast address): Invalid argument");
    expect_error([&] { v4.join_group(Address::unix_path("/tmp/x")); }, EAFNOSUPPORT,
                 "join group /tmp/x: Address family not supported by protocol");
}

TEST_F(MulticastMembershipTest, SourceOfAnotherFamilyIsRefused) {
    Socket v4(AF_INET, SOCK_DGRAM);
    const Address group = ssm_group4(4);
    expect_error([&] { v4.join_source_group(group, Address::ip("::1", 0), kLo); }, EINVAL,
                 "join group " + group.host() +
                     " source ::1 on lo (the source is not of the group's family): Invalid "
                     "argument");
}

TEST_F(MulticastMembershipTest, SourceSpecificJoinsOfBothFamilies) {
    // IPv4 by name and IPv6 go through MCAST_JOIN_SOURCE_GROUP; IPv4 by address
    // or any through IP_ADD_SOURCE_MEMBERSHIP. Each source is its own entry.
    for (const MulticastInterface& on : {kLo, MulticastInterface::parse("127.0.0.1")}) {
        SCOPED_TRACE(on.to_string());
        Socket s(AF_INET, SOCK_DGRAM);
        const Address group = ssm_group4(5);
        const Address source = Address::ip("127.0.0.2", 0);
        s.join_source_group(group, source, on);
        s.join_source_group(group, Address::ip("127.0.0.3", 0), on);
        expect_error([&] { s.join_source_group(group, source, on); }, EADDRNOTAVAIL,
                     "join group " + group.host() + " source 127.0.0.2 on " + on.to_string() +
                         ": Cannot assign requested address");
        s.leave_source_group(group, source, on);
        expect_error([&] { s.leave_source_group(group, source, on); }, EADDRNOTAVAIL,
                     "leave group " + group.host() + " source 127.0.0.2 on " + on.to_string() +
                         ": Cannot assign requested address");
    }
    Socket v6(AF_INET6, SOCK_DGRAM);
    const Address group = group6(5);
    const Address source = Address::ip("::1", 0);
    v6.join_source_group(group, source, kLo);
    v6.join_source_group(group, Address::ip("::2", 0), kLo);
    expect_error(
        [&] { v6.join_source_group(group, source, kLo); }, EADDRNOTAVAIL,
        "join group " + group.host() + " source ::1 on lo: Cannot assign requested address");
    v6.leave_source_group(group, source, kLo);
    expect_error(
        [&] { v6.leave_source_group(group, source, kLo); }, EADDRNOTAVAIL,
        "leave group " + group.host() + " source ::1 on lo: Cannot assign requested address");
}

TEST_F(MulticastDeliveryTest, JoinedOnLoopbackReceivesFromTheSender) {
    const Address where = group4(10);
    Socket receiver = receiver_for(where);
    receiver.join_group(where, kLo);
    const Address to = receiver.local_address();
    ASSERT_NE(to.port(), 0);
    EXPECT_EQ(to.host(), where.host());

    Socket sender = lo_sender("127.0.0.1");
    sender.sendto("hello, group", to);
    Address from;
    EXPECT_EQ(receive(receiver, &from), "hello, group");
    EXPECT_EQ(from, sender.local_address());
}

TEST_F(MulticastDeliveryTest, SeveralReceiversShareTheGroupPort) {
    const Address group = group4(11);
    Socket first = receiver_for(group);
    first.join_group(group, kLo);
    Address to = group;
    to.set_port(first.local_address().port());
    Socket second = receiver_for(to);
    second.join_group(group, kLo);

    Socket sender = lo_sender();
    sender.sendto("to both", to);
    EXPECT_EQ(receive(first), "to both");
    EXPECT_EQ(receive(second), "to both");
}

TEST_F(MulticastDeliveryTest, AfterLeavingNothingArrives) {
    const Address group = group4(12);
    Socket receiver = receiver_for(group);
    receiver.join_group(group, kLo);
    const Address to = receiver.local_address();
    receiver.leave_group(group, kLo);

    Socket sender = lo_sender();
    sender.sendto("while away", to);
    // The sentinel goes the same way after rejoining: were the first datagram
    // delivered, it would be read first.
    receiver.join_group(group, kLo);
    sender.sendto("sentinel", to);
    EXPECT_EQ(receive(receiver), "sentinel");
}

TEST_F(MulticastDeliveryTest, SourceSpecificJoinFiltersBySender) {
    for (const MulticastInterface& on : {kLo, MulticastInterface::parse("127.0.0.1")}) {
        SCOPED_TRACE(on.to_string());
        const Address group = ssm_group4(13);
        Socket receiver = receiver_for(group);
        receiver.join_source_group(group, Address::ip("127.0.0.3", 0), on);
        const Address to = receiver.local_address();

        Socket other = lo_sender("127.0.0.2");
        other.sendto("from the wrong source", to);
        Socket chosen = lo_sender("127.0.0.3");
        chosen.sendto("from the chosen source", to);
        Address from;
        EXPECT_EQ(receive(receiver, &from), "from the chosen source");
        EXPECT_EQ(from.host(), "127.0.0.3");
    }
}

TEST_F(MulticastDeliveryTest, SourceJoinAfterAnySourceJoinNarrowsTheMembership) {
    const Address group = group4(15);
    Socket receiver = receiver_for(group);
    receiver.join_group(group, kLo);
    receiver.join_source_group(group, Address::ip("127.0.0.3", 0), kLo);
    // The membership exists: an any-source join on top of it is refused.
    expect_error([&] { receiver.join_group(group, kLo); }, EADDRINUSE,
                 "join group " + group.host() + " on lo: Address already in use");
    const Address to = receiver.local_address();
    Socket other = lo_sender("127.0.0.2");
    other.sendto("from the wrong source", to);
    Socket chosen = lo_sender("127.0.0.3");
    chosen.sendto("from the chosen source", to);
    EXPECT_EQ(receive(receiver), "from the chosen source");
}

TEST_F(MulticastDeliveryTest, WithMulticastAllOffOtherSocketsGroupsStayOut) {
    // A socket bound to the wildcard address on the group's port, which joined nothing.
    const Address group = group4(14);
    Socket member = receiver_for(group);
    member.join_group(group, kLo);
    const std::uint16_t port = member.local_address().port();

    for (const bool all : {true, false}) {
        SCOPED_TRACE(all ? "IP_MULTICAST_ALL on (Linux's default)" : "IP_MULTICAST_ALL off");
        Socket bystander(AF_INET, SOCK_DGRAM);
        bystander.set_reuse_address(true);
        if (!all) bystander.set_multicast_all(false);
        bystander.bind(Address::ip("0.0.0.0", port));
        bystander.set_timeout(kGuard);

        Address to = group;
        to.set_port(port);
        Socket sender = lo_sender();
        sender.sendto("for members", to);
        EXPECT_EQ(receive(member), "for members");
        // Unicast to the port reaches only the bystander (the member is bound to the group).
        sender.sendto("sentinel", Address::ip("127.0.0.1", port));
        EXPECT_EQ(receive(bystander), all ? "for members" : "sentinel");
        if (all) {
            EXPECT_EQ(receive(bystander), "sentinel");
        }
    }
}

}  // namespace
}  // namespace ferry
