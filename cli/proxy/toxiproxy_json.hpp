// Internal to the ferry command: proxies and toxics as Toxiproxy's JSON shapes them, for the
// HTTP API and the --config file (field names, defaults, the order of fields in responses).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ferry/testkit/fault_proxy.hpp"
#include "ferry/testkit/toxic.hpp"

namespace ferry::cli::proxy {

using Json = nlohmann::ordered_json;

/// A request that cannot be served: the API answers `status` with
/// {"error": what(), "status": status}, Toxiproxy's error body.
class ApiError : public std::runtime_error {
  public:
    ApiError(int status, const std::string& what) : std::runtime_error(what), status_(status) {}
    [[nodiscard]] int status() const noexcept { return status_; }

  private:
    int status_;
};

/// `bad request body: <why>` (400), as Toxiproxy words a body it cannot decode.
ApiError bad_body(const std::string& why);

/// {"attributes": {...}, "name", "type", "stream", "toxicity"}; whole numbers print as integers.
Json toxic_json(const testkit::Toxic& toxic);
/// {"name", "listen", "upstream", "enabled", "toxics": [...]}, and "protocol": "udp" for UDP.
Json proxy_json(const testkit::ProxyState& proxy);

/// The rules of Toxiproxy's API: a missing attribute is 0, an unknown one ignored.
inline constexpr testkit::ToxicRules kToxiproxyRules{true, true};

/// A toxic from Toxiproxy's body {name?, type, stream?, toxicity?, attributes?}
/// (`direction` is accepted for `stream`, a string `TYPE:DIRECTION:k=v` for the whole).
/// Throws ApiError (400: "invalid toxic type", "stream was invalid, ...",
/// "bad request body: ...") or testkit::ToxicError (a value out of range).
testkit::Toxic toxic_from_json(const Json& body, const testkit::ToxicRules& rules);
/// An update's body {toxicity?, attributes?}; other fields are ignored, as in Toxiproxy.
testkit::ToxicChange toxic_change_from_json(const Json& body);

/// One proxy of a POST /proxies or /populate body, or of a --config file:
/// {name, listen, upstream, enabled, protocol, toxics}.
struct ProxyEntry {
    testkit::ProxyConfig config;
    std::vector<testkit::Toxic> toxics;
};
/// Throws ApiError: 400 `bad request body: ...` for a field of the wrong
/// type; `missing required field: name` (or upstream) with `where` appended
/// (" at proxy 2") unless `default_name` fills a missing name.
ProxyEntry proxy_entry_from_json(const Json& body, const std::string& where,
                                 const testkit::ToxicRules& rules,
                                 const std::string& default_name = {});
/// An update's body {listen?, upstream?, enabled?}; the name is not changed.
testkit::ProxyChange proxy_change_from_json(const Json& body);

/// Parses a request body; throws bad_body for what is not JSON (a number out of
/// a double's range included).
Json parse_body(const std::string& text);

}  // namespace ferry::cli::proxy
