// The JSON of ferry proxy (cli/proxy/toxiproxy_json.cpp): what a body or config file that
// cannot be read gives.
#include "proxy/toxiproxy_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ferry::cli::proxy {
namespace {

void expect_bad_body(const std::string& text, const std::string& why) {
    try {
        (void)parse_body(text);
        ADD_FAILURE() << "parsed " << text;
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
        EXPECT_EQ(std::string(e.what()), "bad request body: " + why);
    }
}

// Found by the toxiproxy_json fuzz harness: a number too large for a double is nlohmann's
// out_of_range, not a parse_error; it escaped parse_body, so `ferry proxy --config` died
// of an uncaught exception (abort) and the API answered 500.
TEST(ToxiproxyJsonTest, NumberOutOfRangeIsABadBody) {
    expect_bad_body("[1e99999]", "number overflow parsing '1e99999'");
    expect_bad_body("{\"toxicity\": -1e400}", "number overflow parsing '-1e400'");
}

TEST(ToxiproxyJsonTest, TextThatIsNotJsonIsABadBody) {
    expect_bad_body("", "EOF");
    try {
        (void)parse_body("{\"name\": ");
        ADD_FAILURE() << "parsed a truncated object";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
        EXPECT_EQ(std::string(e.what()).rfind("bad request body: parse error", 0), 0U) << e.what();
    }
}

}  // namespace
}  // namespace ferry::cli::proxy
