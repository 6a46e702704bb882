// ferry proxy --api (cli/proxy/api.cpp) over loopback: what it answers to a request body it
// cannot read.
#include "proxy/api.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "ferry/testkit/fault_proxy.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry::cli::proxy {
namespace {

using ProxyApiTest = test::FdLeakCheck;

/// POSTs `body` to /proxies of a fresh API over loopback and returns the answer.
httplib::Result post_proxies(const std::string& body) {
    testkit::FaultProxyThread proxies;
    testkit::FaultProxy* proxy = proxies.call([](testkit::FaultProxy& f) { return &f; });
    ApiServer api(*proxy, Address::ip("127.0.0.1", 0), "test");
    api.start();

    httplib::Client client("127.0.0.1", api.address().port());
    client.set_connection_timeout(std::chrono::seconds(10));
    client.set_read_timeout(std::chrono::seconds(10));
    return client.Post("/proxies", body, "application/json");
}

// Found by the api fuzz harness: the error answer quotes the bad body, and quoting bytes that
// are not UTF-8 made the JSON library throw inside the handler's error path; the exception
// escaped to cpp-httplib, which answered a bare 500 instead of Toxiproxy's 400.
TEST_F(ProxyApiTest, ABodyThatIsNotUtf8IsABadRequestWithAnErrorBody) {
    const auto answer = post_proxies("{\"name\": \"\xdfx\", \"upstream\": \"127.0.0.1:1\"}");
    ASSERT_TRUE(answer) << httplib::to_string(answer.error());
    EXPECT_EQ(answer->status, 400);
    ASSERT_TRUE(nlohmann::json::accept(answer->body)) << answer->body;
    const auto body = nlohmann::json::parse(answer->body);
    EXPECT_EQ(body["status"], 400);
    EXPECT_EQ(body["error"].get<std::string>().rfind("bad request body: ", 0), 0U) << answer->body;
}

// Found by the toxiproxy_json fuzz harness: a number too large for a double (`1e+800`) is
// nlohmann's out_of_range, not a parse_error; it escaped parse_body and ended the process.
TEST_F(ProxyApiTest, ANumberTooLargeForADoubleIsABadRequestWithAnErrorBody) {
    const auto answer =
        post_proxies("{\"name\": \"a\", \"upstream\": \"127.0.0.1:1\", \"x\": 1e+800}");
    ASSERT_TRUE(answer) << httplib::to_string(answer.error());
    EXPECT_EQ(answer->status, 400);
    ASSERT_TRUE(nlohmann::json::accept(answer->body)) << answer->body;
    const auto body = nlohmann::json::parse(answer->body);
    EXPECT_EQ(body["error"].get<std::string>().rfind("bad request body: ", 0), 0U) << answer->body;
}

}  // namespace
}  // namespace ferry::cli::proxy
