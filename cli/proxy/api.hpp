// Internal to the ferry command: Toxiproxy 2.x's HTTP API over a FaultProxy (`ferry proxy --api`).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "ferry/address.hpp"
#include "ferry/event_loop.hpp"
#include "ferry/testkit/fault_proxy.hpp"

namespace httplib {
class Server;
}

namespace ferry::cli::proxy {

/// The HTTP side runs on cpp-httplib's threads; every request that reads or
/// changes proxies is handed to the loop's thread (call_on_loop), where the
/// relays run, so the FaultProxy is only ever touched there.
///
/// Endpoints, fields, defaults, status codes and error bodies are
/// Toxiproxy's (its README's "HTTP API"); ferry adds "protocol": "udp" on a
/// proxy, "both" as a stream, and UDP toxics. Requests whose User-Agent is a
/// browser's get 403, bodies over 1 MiB 413.
class ApiServer {
  public:
    /// Binds `address` (throws ferry::Error when it cannot, e.g. in use).
    ApiServer(testkit::FaultProxy& proxy, const Address& address, std::string version);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    [[nodiscard]] const Address& address() const { return address_; }

    /// Serves on a thread of its own until stop().
    void start();
    /// Stops serving. Call it on the loop's thread once the loop is no longer
    /// running: it runs the loop meanwhile, so requests waiting for it finish.
    void stop();

  private:
    testkit::FaultProxy& proxy_;
    EventLoop& loop_;
    std::string version_;
    std::unique_ptr<httplib::Server> http_;
    Address address_;
    std::thread thread_;
    std::atomic<bool> finished_{false};
};

/// Registers the API's endpoints on `server` (what ApiServer serves; a test can drive them
/// without a socket). Requests that read or change proxies run on `proxy`'s loop thread
/// (call_on_loop), so that loop must be running on a thread of its own. GET /version
/// answers `version`.
void add_api_routes(httplib::Server& server, testkit::FaultProxy& proxy,
                    const std::string& version);

}  // namespace ferry::cli::proxy
