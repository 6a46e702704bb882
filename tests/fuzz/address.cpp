// Fuzzes whatever turns text into an address (ferry/address.hpp, and the fault proxy's
// HOST:PORT): numeric IPv4/IPv6 hosts, Unix paths and abstract names, ports and service
// names, HOST:PORT and [IPV6]:PORT endpoints, multicast interfaces, and sockaddrs of any
// length as the kernel hands them over. What parses must print back as what it is and
// parse again to the same address; what does not must fail with its documented error.
//
// No name is ever resolved: endpoints go to the resolver only when their host is numeric
// (or empty), and the harness runs in a network namespace of its own besides.
//
// Input: the text, then a few bytes of options, and last the byte that picks the parser
// (FuzzedDataProvider takes numbers from the end).
#include <arpa/inet.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"
#include "ferry/socket.hpp"
#include "ferry/testkit/fault_proxy.hpp"
#include "isolated_network.hpp"

namespace {

using ferry::Address;

bool has_nul(std::string_view text) {
    return text.find('\0') != std::string_view::npos;
}

bool all_digits(std::string_view text) {
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_numeric_host(const std::string& host) {
    unsigned char scratch[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), scratch) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), scratch) == 1;
}

void numeric_ip(FuzzedDataProvider& in) {
    const auto port = in.ConsumeIntegral<std::uint16_t>();
    const std::string text = in.ConsumeRemainingBytesAsString();
    Address a;
    try {
        a = Address::ip(text, port);
    } catch (const ferry::Error& e) {
        FUZZ_CHECK(e.code() == std::errc::invalid_argument);
        return;
    }
    // A host with a NUL in it is not that host (C functions would stop at the NUL).
    FUZZ_CHECK(!has_nul(text));
    FUZZ_CHECK(a.is_ip());
    FUZZ_CHECK(a.port() == port);
    FUZZ_CHECK(Address::ip(a.host(), a.port()) == a);
    const std::string port_text = ":" + std::to_string(port);
    FUZZ_CHECK(a.to_string() ==
               (a.family() == AF_INET ? a.host() + port_text : "[" + a.host() + "]" + port_text));
}

void unix_path(FuzzedDataProvider& in) {
    const std::string text = in.ConsumeRemainingBytesAsString();
    Address a;
    try {
        a = Address::unix_path(text);
    } catch (const ferry::Error& e) {
        FUZZ_CHECK(e.code() == std::errc::invalid_argument ||
                   e.code() == std::errc::filename_too_long);
        return;
    }
    FUZZ_CHECK(a.family() == AF_UNIX);
    FUZZ_CHECK(a.port() == 0);
    // A filesystem path has no NUL; an abstract name ('@') is bytes and may.
    if (text.front() != '@') FUZZ_CHECK(!has_nul(text));
    FUZZ_CHECK(a.size() <= sizeof(sockaddr_un));
    FUZZ_CHECK(a.host() == text);
    FUZZ_CHECK(a.to_string() == text);
    FUZZ_CHECK(Address::unix_path(a.host()) == a);
}

void port(FuzzedDataProvider& in) {
    const std::string protocol = in.PickValueInArray({"", "tcp", "udp"});
    const std::string text = in.ConsumeRemainingBytesAsString();
    std::uint16_t value = 0;
    try {
        value = ferry::parse_port(text, protocol);
    } catch (const ferry::Error& e) {
        FUZZ_CHECK(e.code() == ferry::Errc::bad_port);
        return;
    }
    if (all_digits(text))
        FUZZ_CHECK(std::stoul(text) == value);
    else
        FUZZ_CHECK(!has_nul(text));  // "http\0x" is not the service http
    FUZZ_CHECK(ferry::parse_port(std::to_string(value), protocol) == value);
}

/// The host of HOST:PORT or [HOST]:PORT as the fault proxy's syntax has it (or the whole
/// text when there is no port), to decide whether resolving it could look a name up.
std::string host_part(const std::string& text) {
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        return close == std::string::npos ? text : text.substr(1, close - 1);
    }
    const std::size_t colon = text.rfind(':');
    return colon == std::string::npos ? text : text.substr(0, colon);
}

void endpoint(FuzzedDataProvider& in) {
    const bool udp = in.ConsumeBool();
    const bool passive = in.ConsumeBool();
    const std::string text = in.ConsumeRemainingBytesAsString();
    const std::string host = host_part(text);
    if (!host.empty() && host != "<broadcast>" && !is_numeric_host(host)) return;
    const auto protocol = udp ? ferry::testkit::Protocol::udp : ferry::testkit::Protocol::tcp;
    Address a;
    try {
        a = ferry::testkit::resolve_endpoint(text, protocol, passive);
    } catch (const ferry::testkit::ProxyError& e) {
        FUZZ_CHECK(e.kind() == ferry::testkit::ProxyError::Kind::start);
        return;
    } catch (const ferry::Error&) {
        return;  // a bad port, or a host the resolver refuses
    }
    FUZZ_CHECK(!has_nul(text));
    FUZZ_CHECK(a.is_ip());
    if (!passive) FUZZ_CHECK(a.port() != 0);
    const std::size_t colon = text.rfind(':');
    FUZZ_CHECK(colon != std::string::npos);
    FUZZ_CHECK(a.port() == ferry::parse_port(text.substr(colon + 1), udp ? "udp" : "tcp"));
}

void multicast_interface(FuzzedDataProvider& in) {
    const std::string text = in.ConsumeRemainingBytesAsString();
    const auto on = ferry::MulticastInterface::parse(text);
    FUZZ_CHECK(on.is_any() == text.empty());
    if (on.ipv4_address() != nullptr) FUZZ_CHECK(Address::ip(text, 0) == *on.ipv4_address());
    try {
        const unsigned index = on.index();
        // Only loopback exists here: a name that found it is "lo", or an alias label on it
        // ("lo:1": the kernel reads the device's name up to the colon).
        if (!text.empty() && !is_numeric_host(text))
            FUZZ_CHECK(text.substr(0, text.find(':')) == "lo" && index == 1);
    } catch (const ferry::Error& e) {
        FUZZ_CHECK(e.code() == std::errc::no_such_device);
    }
    FUZZ_CHECK(!on.to_string().empty());
}

void kernel_sockaddr(FuzzedDataProvider& in) {
    const auto length = in.ConsumeIntegralInRange<socklen_t>(0, sizeof(sockaddr_storage) + 4);
    std::vector<std::uint8_t> bytes = in.ConsumeBytes<std::uint8_t>(length);
    bytes.resize(length);
    Address a;
    try {
        a = Address(reinterpret_cast<const sockaddr*>(bytes.data()), length);
    } catch (const ferry::Error& e) {
        FUZZ_CHECK(e.code() == std::errc::invalid_argument);
        FUZZ_CHECK(length > sizeof(sockaddr_storage));
        return;
    }
    FUZZ_CHECK(a.size() == length);
    FUZZ_CHECK(a == a);
    FUZZ_CHECK(!a.to_string().empty());
    if (a.family() == AF_INET || a.family() == AF_INET6)
        FUZZ_CHECK(Address::ip(a.host(), a.port()).host() == a.host());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ferry::fuzz::isolate_network();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
        case 0:
            numeric_ip(in);
            break;
        case 1:
            unix_path(in);
            break;
        case 2:
            port(in);
            break;
        case 3:
            endpoint(in);
            break;
        case 4:
            multicast_interface(in);
            break;
        default:
            kernel_sockaddr(in);
            break;
    }
    return 0;
}
