// Fuzzes ferry proxy's HTTP API (cli/proxy/api.cpp) in-process: the API's own routes on a
// cpp-httplib server that reads its requests from memory instead of a socket, over a real
// FaultProxy and its event loop. A run is a few requests in a row (create a proxy, then add
// a toxic to it, ...) so that later requests find state to act on.
//
// The requests are served as work posted to the proxy's loop, on this thread: the handlers'
// call_on_loop then runs at once (as on the loop's thread it does) instead of handing every
// call to a second thread and waiting, which made this harness eight times slower. What the
// handlers do to the proxy is the same either way.
//
// Every request must get a well-formed answer: no exception escaping a handler, JSON where
// the API says JSON, and an error body ({"error", "status"}) with every 4xx or 5xx that is
// not the JSON library's own exception. Once the run's proxies are removed, no descriptor
// is left open.
//
// Proxies bind real sockets: the harness runs in a network namespace of its own, so whatever
// listen or upstream address the fuzzer writes, nothing leaves its private loopback.
//
// Input: requests separated by a line "===", each as
//   METHOD /path
//   Header: value       (any number, then an empty line)
//   body
#include <dirent.h>
#include <httplib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "ferry/event_loop.hpp"
#include "ferry/testkit/fault_proxy.hpp"
#include "isolated_network.hpp"
#include "proxy/api.hpp"

namespace {

using ferry::testkit::FaultProxy;

constexpr std::size_t kMaxRequests = 8;

/// A connection as cpp-httplib sees it, reading a request from memory and keeping the answer.
class MemoryStream final : public httplib::Stream {
  public:
    explicit MemoryStream(std::string request) : in_(std::move(request)) {}

    bool is_readable() const override { return true; }
    bool is_writable() const override { return true; }
    ssize_t read(char* ptr, std::size_t size) override {
        const std::size_t n = std::min(size, in_.size() - read_);
        in_.copy(ptr, n, read_);
        read_ += n;
        return static_cast<ssize_t>(n);
    }
    ssize_t write(const char* ptr, std::size_t size) override {
        out_.append(ptr, size);
        return static_cast<ssize_t>(size);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        ip = "127.0.0.1";
        port = 40000;
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        ip = "127.0.0.1";
        port = 8474;
    }
    socket_t socket() const override { return -1; }

    [[nodiscard]] const std::string& written() const { return out_; }

  private:
    std::string in_;
    std::size_t read_ = 0;
    std::string out_;
};

/// cpp-httplib's server without its listening socket: one raw request in, the raw answer out.
class InProcessServer final : public httplib::Server {
  public:
    std::string serve(std::string request) {
        MemoryStream stream(std::move(request));
        bool closed = false;
        process_request(stream, true, closed, {});
        return stream.written();
    }
};

struct World {
    ferry::EventLoop loop;
    FaultProxy proxy{loop, ferry::testkit::FaultProxyOptions{.seed = 1}};
    InProcessServer http;
    World() { ferry::cli::proxy::add_api_routes(http, proxy, "2.12.0"); }

    /// Runs `work` as posted work on the loop, the way every request reaches the proxy.
    template <class F>
    void on_loop(F work) {
        bool done = false;
        loop.post([&] {
            work();
            done = true;
        });
        while (!done)
            loop.run_once(std::chrono::seconds(1));
        loop.run_once(std::chrono::seconds(0));  // what the work posted in turn
    }
};

World* world = nullptr;

/// The sockets and anonymous inodes (eventfd, timerfd, epoll) /proc/self/fd lists, with
/// what each is: what a proxy opens. Pipes are left out: the sanitizers' symbolizer runs
/// behind two of them from whenever libFuzzer first prints a function's name.
std::map<std::string, std::string> open_descriptors() {
    std::map<std::string, std::string> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    FUZZ_CHECK(dir != nullptr);
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name == "." || name == ".." || std::stoi(name) == ::dirfd(dir)) continue;
        char target[256] = {};
        const std::string link = "/proc/self/fd/" + name;
        const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        const std::string what = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
        if (what.rfind("pipe:", 0) != 0) fds[name] = what;
    }
    ::closedir(dir);
    return fds;
}

void check_no_descriptor_left(const std::map<std::string, std::string>& at_rest) {
    const auto now = open_descriptors();
    if (now == at_rest) return;
    for (const auto& [fd, what] : now)
        if (at_rest.count(fd) == 0 || at_rest.at(fd) != what)
            std::fprintf(stderr, "left open: fd %s -> %s\n", fd.c_str(), what.c_str());
    for (const auto& [fd, what] : at_rest)
        if (now.count(fd) == 0)
            std::fprintf(stderr, "closed: fd %s -> %s\n", fd.c_str(), what.c_str());
    FUZZ_FAIL("descriptors differ from before the run");
}

std::vector<std::string_view> split(std::string_view text, std::string_view separator) {
    std::vector<std::string_view> parts;
    for (;;) {
        const std::size_t at = text.find(separator);
        parts.push_back(text.substr(0, at));
        if (at == std::string_view::npos || parts.size() == kMaxRequests) return parts;
        text.remove_prefix(at + separator.size());
    }
}

/// A request target cpp-httplib can read: bytes it could not are percent-encoded.
std::string as_target(std::string_view path) {
    std::string out;
    for (const char c : path) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte >= 0x7f) {
            char hex[4];
            std::snprintf(hex, sizeof hex, "%%%02X", byte);
            out += hex;
        } else {
            out += c;
        }
    }
    return out.empty() || out.front() != '/' ? "/" + out : out;
}

/// The request as a client sends it: the fuzzer's lines as the request line, headers and
/// body, with a Content-Length whenever there is a body (none without, as `curl -X POST`).
std::string http_request(std::string_view text) {
    const std::size_t line_end = text.find('\n');
    const std::string_view line = text.substr(0, line_end);
    std::string_view rest = line_end == std::string_view::npos ? "" : text.substr(line_end + 1);
    const std::size_t space = line.find(' ');
    std::string method(line.substr(0, space));
    std::erase_if(method, [](char c) { return c <= ' ' || c > '~'; });
    if (method.empty()) method = "GET";
    const std::string path =
        as_target(space == std::string_view::npos ? "" : line.substr(space + 1));

    std::string request = method + " " + path + " HTTP/1.1\r\nHost: fuzz\r\n";
    while (!rest.empty()) {
        const std::size_t end = rest.find('\n');
        const std::string_view header = rest.substr(0, end);
        rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
        if (header.empty()) break;
        const std::size_t colon = header.find(':');
        if (colon == std::string_view::npos || colon == 0) continue;
        std::string name(header.substr(0, colon));
        for (char& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name == "content-length" || name == "transfer-encoding") continue;
        std::string kept(header);
        std::erase_if(kept, [](char c) { return c == '\r' || c == '\0'; });
        request += kept + "\r\n";
    }
    if (!rest.empty()) request += "Content-Length: " + std::to_string(rest.size()) + "\r\n";
    request += "\r\n";
    request += rest;
    return request;
}

/// The answer is HTTP with a status; handlers let no exception out (cpp-httplib would
/// answer 500 with an EXCEPTION_WHAT header); JSON answers are JSON, errors say what.
// Whether this run's input itself spells the JSON library's exception prefix: an error
// message may then quote it back, and the check below cannot tell the two apart.
bool input_mentions_json_exception = false;

void check_answer(const std::string& request, const std::string& answer) {
    FUZZ_CHECK(answer.rfind("HTTP/1.1 ", 0) == 0);
    FUZZ_CHECK(answer.size() >= 12);
    const int status = std::atoi(answer.substr(9, 3).c_str());
    FUZZ_CHECK(status >= 200 && status <= 599);
    const std::size_t head_end = answer.find("\r\n\r\n");
    FUZZ_CHECK(head_end != std::string::npos);
    const std::string head = answer.substr(0, head_end);
    const std::string body = answer.substr(head_end + 4);
    if (head.find("EXCEPTION_WHAT") != std::string::npos) {
        std::fprintf(stderr, "%s\n", head.c_str());
        FUZZ_FAIL("an exception escaped an API handler");
    }
    if (request.rfind("HEAD ", 0) == 0) {  // the headers a GET would have, and no body
        FUZZ_CHECK(body.empty());
        return;
    }
    const bool json = head.find("Content-Type: application/json") != std::string::npos;
    if (json) FUZZ_CHECK(nlohmann::json::accept(body));
    // Toxiproxy's error body on every failure it answers itself (cpp-httplib's own 400 for
    // a request it cannot parse comes without a body; 403/404 are plain text, as Toxiproxy).
    if (status >= 400 && body.rfind("{", 0) == 0) {
        FUZZ_CHECK(nlohmann::json::accept(body));
        const auto error = nlohmann::json::parse(body);
        FUZZ_CHECK(error.contains("error") && error.value("status", 0) == status);
        // The JSON library's own exceptions mean a body went unchecked: never an answer.
        if (!input_mentions_json_exception)
            FUZZ_CHECK(error["error"].dump().find("json.exception") == std::string::npos);
    }
    if (status == 500 && std::getenv("FUZZ_API_SHOW_500") != nullptr)
        std::fprintf(stderr, "500: %s\n", body.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ferry::fuzz::isolate_network();  // before the proxy binds anything
    world = new World();             // lives until the process ends
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto descriptors_at_rest = open_descriptors();
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    input_mentions_json_exception = input.find("json.exception") != std::string_view::npos;
    world->on_loop([input] {
        for (const std::string_view text : split(input, "\n===\n")) {
            const std::string request = http_request(text);
            check_answer(request, world->http.serve(request));
        }
        // Back to no proxies for the next input; nothing they opened may stay open.
        for (const auto& p : world->proxy.list())
            world->proxy.remove(p.config.name);
    });
    check_no_descriptor_left(descriptors_at_rest);
    return 0;
}
