// Fuzzes the JSON that ferry proxy reads (cli/proxy/toxiproxy_json.cpp): the --config file
// (a list of proxies, or {"routes": [...]}) and every body of Toxiproxy's API (a proxy, a
// populate list, a toxic, an update of either). Whatever the document, a parser either
// returns or throws the API's own errors (ApiError, ToxicError), never anything else (which
// the API would answer as a 500); and what it returns, printed as the API prints it and
// read again, is the same proxy or toxic.
//
// Input: the document's text.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "check.hpp"
#include "ferry/testkit/fault_proxy.hpp"
#include "proxy/toxiproxy_json.hpp"

namespace {

using namespace ferry::cli::proxy;
using ferry::testkit::ProxyState;
using ferry::testkit::Toxic;
using ferry::testkit::ToxicRules;

constexpr ToxicRules kFerryRules{};  // --config: a missing attribute or an unknown key is an error

bool same(const Toxic& a, const Toxic& b) {
    return a.name == b.name && a.type == b.type && a.direction == b.direction &&
           a.toxicity == b.toxicity && a.attributes == b.attributes && a.tcp == b.tcp &&
           a.udp == b.udp;
}

/// Runs one parser: its own errors are answers (nullopt); any other exception is a finding.
template <class F>
auto decoded(F&& parse) -> std::optional<decltype(parse())> {
    try {
        return parse();
    } catch (const ApiError& e) {
        FUZZ_CHECK(e.status() >= 400 && e.status() < 500);
    } catch (const ferry::testkit::ToxicError&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        FUZZ_FAIL("a parser threw something other than ApiError or ToxicError");
    }
    return std::nullopt;
}

/// Printed as the API prints it and read back with the same rules: the same toxic.
void round_trip(const Toxic& toxic, const ToxicRules& rules) {
    try {
        const Json printed = parse_body(toxic_json(toxic).dump());
        FUZZ_CHECK(same(toxic_from_json(printed, rules), toxic));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "reading back %s: %s\n", toxic_json(toxic).dump().c_str(), e.what());
        FUZZ_FAIL("a toxic the API prints does not read back");
    }
}

/// The same for a proxy and its toxics.
void round_trip(const ProxyEntry& entry, const ToxicRules& rules) {
    ProxyState state;
    state.config = entry.config;
    state.toxics = entry.toxics;
    const std::string printed = proxy_json(state).dump();
    try {
        const ProxyEntry again = proxy_entry_from_json(parse_body(printed), "", rules);
        FUZZ_CHECK(again.config.name == entry.config.name);
        FUZZ_CHECK(again.config.listen == entry.config.listen);
        FUZZ_CHECK(again.config.upstream == entry.config.upstream);
        FUZZ_CHECK(again.config.enabled == entry.config.enabled);
        FUZZ_CHECK(again.config.protocol == entry.config.protocol);
        FUZZ_CHECK(again.toxics.size() == entry.toxics.size());
        for (std::size_t i = 0; i < entry.toxics.size(); ++i)
            FUZZ_CHECK(same(again.toxics[i], entry.toxics[i]));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "reading back %s: %s\n", printed.c_str(), e.what());
        FUZZ_FAIL("a proxy the API prints does not read back");
    }
}

/// The --config file as routes_from_config reads it (before it checks addresses).
void as_config_file(Json doc) {
    if (doc.is_object() && doc.size() == 1 && doc.contains("routes")) doc = doc["routes"];
    if (!doc.is_array()) return;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const auto entry = decoded([&] {
            return proxy_entry_from_json(doc[i], "", kFerryRules, "route" + std::to_string(i + 1));
        });
        if (!entry) continue;
        FUZZ_CHECK(!entry->config.name.empty() && !entry->config.upstream.empty());
        round_trip(*entry, kFerryRules);
    }
}

/// Every body of the API, as its handlers decode them.
void as_api_bodies(const Json& doc) {
    // POST /proxies, and each entry of POST /populate.
    if (const auto entry = decoded([&] { return proxy_entry_from_json(doc, "", kToxiproxyRules); }))
        round_trip(*entry, kToxiproxyRules);
    if (doc.is_array()) {
        for (std::size_t i = 0; i < doc.size(); ++i) {
            const std::string where = " at proxy " + std::to_string(i + 1);
            if (const auto entry =
                    decoded([&] { return proxy_entry_from_json(doc[i], where, kToxiproxyRules); }))
                round_trip(*entry, kToxiproxyRules);
        }
    }
    // POST /proxies/{name}.
    (void)decoded([&] { return proxy_change_from_json(doc); });
    // POST /proxies/{name}/toxics; and with ferry's strict rules, as a --config route's toxic.
    for (const ToxicRules& rules : {kToxiproxyRules, kFerryRules})
        if (const auto toxic = decoded([&] { return toxic_from_json(doc, rules); }))
            round_trip(*toxic, rules);
    // POST /proxies/{name}/toxics/{toxic}, applied to a toxic of each shape.
    const auto change = decoded([&] { return toxic_change_from_json(doc); });
    if (!change) return;
    for (const char* spec : {"latency:down:latency=10", "loss:up:p=0.1,r=0.5",
                             "slicer:both:average_size=10", "limit_data:up:bytes=5"}) {
        const Toxic before = ferry::testkit::parse_toxic(spec);
        if (const auto after = decoded(
                [&] { return ferry::testkit::apply_change(before, *change, kToxiproxyRules); })) {
            FUZZ_CHECK(after->name == before.name && after->type == before.type);
            round_trip(*after, kToxiproxyRules);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Json doc;
    try {
        doc = parse_body(std::string(reinterpret_cast<const char*>(data), size));
    } catch (const ApiError& e) {
        FUZZ_CHECK(e.status() == 400);
        return 0;
    }
    as_config_file(doc);
    as_api_bodies(doc);
    return 0;
}
