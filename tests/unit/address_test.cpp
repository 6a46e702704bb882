// Address, parse_port and resolve: printable forms, service names, getaddrinfo.
#include "ferry/address.hpp"

#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/un.h>

#include <string>
#include <string_view>

#include "ferry/error.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using AddressTest = test::FdLeakCheck;
using ParsePortTest = test::FdLeakCheck;
using ResolveTest = test::FdLeakCheck;

TEST_F(AddressTest, DefaultIsUnspecified) {
    const Address a;
    EXPECT_EQ(a.family(), AF_UNSPEC);
    EXPECT_FALSE(a.is_ip());
    EXPECT_EQ(a.port(), 0);
    EXPECT_EQ(a.to_string(), "(no address)");
}

TEST_F(AddressTest, Ipv4ToString) {
    const Address a = Address::ip("127.0.0.1", 1060);
    EXPECT_EQ(a.family(), AF_INET);
    EXPECT_TRUE(a.is_ip());
    EXPECT_EQ(a.size(), sizeof(sockaddr_in));
    EXPECT_EQ(a.port(), 1060);
    EXPECT_EQ(a.host(), "127.0.0.1");
    EXPECT_EQ(a.to_string(), "127.0.0.1:1060");
}

TEST_F(AddressTest, Ipv6ToStringHasBrackets) {
    const Address a = Address::ip("::1", 1060);
    EXPECT_EQ(a.family(), AF_INET6);
    EXPECT_EQ(a.size(), sizeof(sockaddr_in6));
    EXPECT_EQ(a.host(), "::1");
    EXPECT_EQ(a.to_string(), "[::1]:1060");
}

TEST_F(AddressTest, Ipv6IsPrintedInCanonicalForm) {
    EXPECT_EQ(Address::ip("0:0:0:0:0:0:0:1", 80).to_string(), "[::1]:80");
    EXPECT_EQ(Address::ip("FE80:0::AB", 0).to_string(), "[fe80::ab]:0");
}

TEST_F(AddressTest, UnixPathToStringIsThePath) {
    const Address a = Address::unix_path("relative/sock");
    EXPECT_EQ(a.family(), AF_UNIX);
    EXPECT_FALSE(a.is_ip());
    EXPECT_EQ(a.port(), 0);
    EXPECT_EQ(a.to_string(), "relative/sock");
    // The terminating NUL is part of the length of a path address.
    EXPECT_EQ(a.size(), offsetof(sockaddr_un, sun_path) + 14);
}

TEST_F(AddressTest, AbstractUnixNameToStringHasAtSign) {
    const Address a = Address::unix_path("@name");
    EXPECT_EQ(a.to_string(), "@name");
    const auto* un = reinterpret_cast<const sockaddr_un*>(a.data());
    EXPECT_EQ(un->sun_path[0], '\0');
    // An abstract name is exactly as long as its bytes: no terminating NUL.
    EXPECT_EQ(a.size(), offsetof(sockaddr_un, sun_path) + 5);
}

TEST_F(AddressTest, UnixPathTooLongOrEmptyIsRejected) {
    EXPECT_THROW((void)Address::unix_path(std::string(sizeof(sockaddr_un::sun_path), 'x')), Error);
    EXPECT_THROW((void)Address::unix_path(""), Error);
    EXPECT_NO_THROW((void)Address::unix_path(std::string(sizeof(sockaddr_un::sun_path) - 1, 'x')));
}

// A filesystem path ends at its first NUL for the kernel, and one that starts
// with NUL would be an abstract name printed as '@...': neither is what was asked.
TEST_F(AddressTest, UnixPathWithANulByteIsRejected) {
    using namespace std::string_view_literals;
    for (const std::string_view path : {"\0name"sv, "dir/so\0ck"sv, "sock\0"sv}) {
        try {
            (void)Address::unix_path(path);
            ADD_FAILURE() << "accepted a path of " << path.size() << " bytes with a NUL";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
            EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
        }
    }
}

// The abstract namespace is bytes, NULs included (unix(7)): they stay, and print as given.
TEST_F(AddressTest, AbstractNameKeepsItsNulBytes) {
    using namespace std::string_view_literals;
    const Address a = Address::unix_path("@a\0b"sv);
    EXPECT_EQ(a.host(), "@a\0b"sv);
    EXPECT_EQ(a.size(), offsetof(sockaddr_un, sun_path) + 4);
    EXPECT_EQ(Address::unix_path(a.host()), a);
}

// An abstract name has no terminating NUL: it may use all of sun_path after its leading NUL.
TEST_F(AddressTest, AbstractNameMayFillSunPath) {
    const std::size_t room = sizeof(sockaddr_un::sun_path);
    const Address a = Address::unix_path("@" + std::string(room - 1, 'n'));
    EXPECT_EQ(a.size(), offsetof(sockaddr_un, sun_path) + room);
    EXPECT_EQ(a.host(), "@" + std::string(room - 1, 'n'));
    EXPECT_THROW((void)Address::unix_path("@" + std::string(room, 'n')), Error);
}

TEST_F(AddressTest, IpRejectsGarbage) {
    for (const char* text : {"garbage", "", "256.1.1.1", "1.2.3", "localhost", "::1::2",
                             "127.0.0.1:80", "[::1]", " 127.0.0.1"}) {
        try {
            (void)Address::ip(text, 80);
            ADD_FAILURE() << "accepted '" << text << "'";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument) << text;
            EXPECT_NE(std::string(e.what()).find(std::string("'") + text + "'"), std::string::npos)
                << e.what();
        }
    }
}

// inet_pton reads a C string: a NUL would cut "127.0.0.1\0junk" down to 127.0.0.1.
TEST_F(AddressTest, IpRejectsTextWithANulByte) {
    using namespace std::string_view_literals;
    for (const std::string_view text : {"127.0.0.1\0junk"sv, "::1\0"sv, "\0::1"sv}) {
        try {
            (void)Address::ip(text, 80);
            ADD_FAILURE() << "accepted a host of " << text.size() << " bytes with a NUL";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
            EXPECT_NE(std::string(e.what()).find("\\0"), std::string::npos) << e.what();
        }
    }
}

TEST_F(AddressTest, SetPortChangesOnlyIpAddresses) {
    Address v4 = Address::ip("10.0.0.1", 1);
    v4.set_port(65535);
    EXPECT_EQ(v4.to_string(), "10.0.0.1:65535");
    Address v6 = Address::ip("::", 1);
    v6.set_port(2);
    EXPECT_EQ(v6.to_string(), "[::]:2");
    Address un = Address::unix_path("p");
    un.set_port(5);
    EXPECT_EQ(un.port(), 0);
    EXPECT_EQ(un.to_string(), "p");
}

TEST_F(AddressTest, EqualityComparesFamilyHostAndPort) {
    EXPECT_EQ(Address::ip("127.0.0.1", 1), Address::ip("127.0.0.1", 1));
    EXPECT_NE(Address::ip("127.0.0.1", 1), Address::ip("127.0.0.1", 2));
    EXPECT_NE(Address::ip("127.0.0.1", 1), Address::ip("127.0.0.2", 1));
    EXPECT_NE(Address::ip("0.0.0.0", 1), Address::ip("::", 1));
    EXPECT_EQ(Address::ip("::1", 1), Address::ip("0::1", 1));
    EXPECT_EQ(Address::unix_path("a"), Address::unix_path("a"));
    EXPECT_NE(Address::unix_path("a"), Address::unix_path("@a"));
}

TEST_F(AddressTest, ConstructFromKernelSockaddr) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(8080);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const Address a(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
    EXPECT_EQ(a, Address::ip("127.0.0.1", 8080));
}

TEST_F(AddressTest, UnnamedUnixAddressPrintsUnnamed) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    const Address a(reinterpret_cast<const sockaddr*>(&un), sizeof(sa_family_t));
    EXPECT_EQ(a.to_string(), "(unnamed)");
}

TEST_F(AddressTest, OversizedSockaddrIsRejected) {
    sockaddr_storage big{};
    EXPECT_THROW(Address(reinterpret_cast<const sockaddr*>(&big), sizeof big + 1), Error);
}

// Found by the address fuzz harness: recvfrom() on an unnamed peer, or a caller with
// nothing to copy, hands over a length of 0 (and maybe no buffer): memcpy from null is
// undefined even for 0 bytes.
TEST_F(AddressTest, SockaddrOfLengthZeroIsAnEmptyAddress) {
    const Address a(nullptr, 0);
    EXPECT_EQ(a.family(), AF_UNSPEC);
    EXPECT_EQ(a.size(), 0U);
    EXPECT_EQ(a.to_string(), "(no address)");
}

TEST_F(ParsePortTest, Numbers) {
    EXPECT_EQ(parse_port("0"), 0);
    EXPECT_EQ(parse_port("1060"), 1060);
    EXPECT_EQ(parse_port("65535"), 65535);
    EXPECT_EQ(parse_port("00080"), 80);
}

TEST_F(ParsePortTest, ServiceNames) {
    EXPECT_EQ(parse_port("domain"), 53);
    EXPECT_EQ(parse_port("http"), 80);
    EXPECT_EQ(parse_port("domain", "udp"), 53);
    EXPECT_EQ(parse_port("http", "tcp"), 80);
}

void expect_bad_port(const std::string& text, std::string_view protocol = {}) {
    try {
        (void)parse_port(text, protocol);
        ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::bad_port) << text;
        EXPECT_EQ(e.code().category(), ferry_category());
        EXPECT_NE(std::string(e.what()).find("port '" + text + "'"), std::string::npos) << e.what();
    }
}

TEST_F(ParsePortTest, OutOfRangeNumberIsBadPort) {
    expect_bad_port("99999");
    expect_bad_port("65536");
    expect_bad_port("184467440737095516160");
}

TEST_F(ParsePortTest, UnknownServiceIsBadPort) {
    expect_bad_port("nosuchservice");
}

TEST_F(ParsePortTest, EmptyIsBadPort) {
    expect_bad_port("");
}

// getservbyname reads a C string: "http\0x" would be taken for http (80).
TEST_F(ParsePortTest, ServiceNameWithANulByteIsBadPort) {
    using namespace std::string_view_literals;
    for (const std::string_view text : {"http\0x"sv, "http\0"sv, "80\0"sv}) {
        try {
            (void)parse_port(text);
            ADD_FAILURE() << "accepted a port of " << text.size() << " bytes with a NUL";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::bad_port) << e.what();
        }
    }
}

TEST_F(ParsePortTest, SignsAndSpacesAreBadPort) {
    expect_bad_port("-1");
    expect_bad_port("+80");
    expect_bad_port(" 80");
    expect_bad_port("80 ");
    expect_bad_port("0x50");
}

TEST_F(ResolveTest, NumericIpv4) {
    const auto results = resolve("127.0.0.1", "1060", {.socktype = SOCK_STREAM});
    ASSERT_EQ(results.size(), 1U);
    EXPECT_EQ(results[0].family, AF_INET);
    EXPECT_EQ(results[0].socktype, SOCK_STREAM);
    EXPECT_EQ(results[0].protocol, IPPROTO_TCP);
    EXPECT_EQ(results[0].address.to_string(), "127.0.0.1:1060");
}

TEST_F(ResolveTest, NumericIpv6) {
    const auto results = resolve("::1", "1060", {.socktype = SOCK_DGRAM});
    ASSERT_EQ(results.size(), 1U);
    EXPECT_EQ(results[0].family, AF_INET6);
    EXPECT_EQ(results[0].protocol, IPPROTO_UDP);
    EXPECT_EQ(results[0].address.to_string(), "[::1]:1060");
}

TEST_F(ResolveTest, ServiceNameGivesItsPort) {
    const auto results = resolve("127.0.0.1", "domain", {.socktype = SOCK_DGRAM});
    ASSERT_FALSE(results.empty());
    EXPECT_EQ(results[0].address.port(), 53);
}

TEST_F(ResolveTest, EveryTypeWhenSocktypeIsZero) {
    const auto results = resolve("127.0.0.1", "7");
    bool stream = false;
    bool dgram = false;
    for (const Resolved& r : results) {
        stream = stream || r.socktype == SOCK_STREAM;
        dgram = dgram || r.socktype == SOCK_DGRAM;
    }
    EXPECT_TRUE(stream);
    EXPECT_TRUE(dgram);
}

TEST_F(ResolveTest, EmptyHostPassiveIsAnyAddress) {
    const auto v4 = resolve("", "0", {.family = AF_INET, .socktype = SOCK_STREAM, .passive = true});
    ASSERT_EQ(v4.size(), 1U);
    EXPECT_EQ(v4[0].address.to_string(), "0.0.0.0:0");
    const auto v6 =
        resolve("", "0", {.family = AF_INET6, .socktype = SOCK_STREAM, .passive = true});
    ASSERT_EQ(v6.size(), 1U);
    EXPECT_EQ(v6[0].address.to_string(), "[::]:0");
    for (const Resolved& r : resolve("", "0", {.socktype = SOCK_STREAM, .passive = true}))
        EXPECT_TRUE(r.address.host() == "0.0.0.0" || r.address.host() == "::")
            << r.address.to_string();
}

TEST_F(ResolveTest, EmptyHostNotPassiveIsLoopback) {
    const auto results = resolve("", "80", {.family = AF_INET, .socktype = SOCK_STREAM});
    ASSERT_EQ(results.size(), 1U);
    EXPECT_EQ(results[0].address.to_string(), "127.0.0.1:80");
}

TEST_F(ResolveTest, EmptyServiceIsPortZero) {
    const auto results = resolve("127.0.0.1", "", {.socktype = SOCK_STREAM});
    ASSERT_EQ(results.size(), 1U);
    EXPECT_EQ(results[0].address.port(), 0);
}

TEST_F(ResolveTest, BroadcastIsAllOnes) {
    const auto results = resolve("<broadcast>", "1060", {.socktype = SOCK_DGRAM});
    ASSERT_EQ(results.size(), 1U);
    EXPECT_EQ(results[0].address.to_string(), "255.255.255.255:1060");
}

// getaddrinfo reads a C string: a host with a NUL would be looked up as its first part.
TEST_F(ResolveTest, HostWithANulByteIsNoName) {
    using namespace std::string_view_literals;
    try {
        (void)resolve("127.0.0.1\0.example"sv, "80");
        FAIL() << "resolved a host with a NUL";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::error_code(EAI_NONAME, resolver_category())) << e.what();
        EXPECT_NE(std::string(e.what()).find("127.0.0.1\\0.example"), std::string::npos)
            << e.what();
    }
}

TEST_F(ResolveTest, LocalhostFromTheHostsFile) {
    const auto results = resolve("localhost", "1060", {.family = AF_INET, .socktype = SOCK_STREAM});
    ASSERT_FALSE(results.empty());
    EXPECT_EQ(results[0].address.to_string(), "127.0.0.1:1060");
}

TEST_F(ResolveTest, UnknownHostThrowsResolverError) {
    // The .invalid top-level domain is reserved never to resolve (RFC 2606),
    // but asking still sends a DNS query to the configured nameserver, which
    // is not ours to send traffic to. A network namespace of this test
    // process alone (each test runs in its own process) has no route out, so
    // the resolver fails locally, with its own error category all the same.
    if (::unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "needs root for a private network namespace";
    try {
        (void)resolve("nosuch.invalid", "80");
        FAIL() << "resolved nosuch.invalid";
    } catch (const Error& e) {
        EXPECT_EQ(e.code().category(), resolver_category());
        EXPECT_NE(e.code().value(), 0);
        EXPECT_EQ(std::string(e.what()).rfind("resolve nosuch.invalid: ", 0), 0U) << e.what();
    }
}

TEST_F(ResolveTest, BadServiceThrowsBadPortBeforeLookingUp) {
    try {
        (void)resolve("127.0.0.1", "nosuchservice");
        FAIL() << "resolved nosuchservice";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::bad_port);
    }
}

TEST_F(ResolveTest, FamilyMismatchIsResolverError) {
    try {
        (void)resolve("127.0.0.1", "80", {.family = AF_INET6});
        FAIL() << "an IPv4 literal resolved as IPv6";
    } catch (const Error& e) {
        EXPECT_EQ(e.code().category(), resolver_category());
    }
}

TEST_F(ResolveTest, CanonicalNameOnFirstResultWhenAsked) {
    const auto results = resolve(
        "localhost", "80", {.family = AF_INET, .socktype = SOCK_STREAM, .canonical_name = true});
    ASSERT_FALSE(results.empty());
    EXPECT_FALSE(results[0].canonical_name.empty());
}

TEST_F(AddressTest, ConstantNames) {
    EXPECT_EQ(family_name(AF_INET), "IPv4");
    EXPECT_EQ(family_name(AF_INET6), "IPv6");
    EXPECT_EQ(family_name(AF_UNIX), "Unix");
    EXPECT_EQ(socktype_name(SOCK_STREAM), "STREAM");
    EXPECT_EQ(socktype_name(SOCK_DGRAM), "DGRAM");
    EXPECT_EQ(socktype_name(SOCK_SEQPACKET), "SEQPACKET");
    EXPECT_EQ(socktype_name(SOCK_RAW), "RAW");
    EXPECT_EQ(protocol_name(IPPROTO_TCP), "tcp");
    EXPECT_EQ(protocol_name(IPPROTO_UDP), "udp");
}

}  // namespace
}  // namespace ferry
