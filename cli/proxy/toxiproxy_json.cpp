// Proxies and toxics in Toxiproxy's JSON: what the HTTP API answers and what it and
// --config accept.
#include "proxy/toxiproxy_json.hpp"

#include <fmt/core.h>

#include <cmath>

namespace ferry::cli::proxy {
namespace {

using testkit::Direction;
using testkit::Protocol;

/// A number as Toxiproxy prints its int attributes: 100, not 100.0.
Json number(double v) {
    if (std::floor(v) == v && std::fabs(v) < 9e15) return static_cast<std::int64_t>(v);
    return v;
}

const Json* field(const Json& body, const char* name) {
    const auto it = body.find(name);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<std::string> string_field(const Json& body, const char* name) {
    const Json* f = field(body, name);
    if (!f) return std::nullopt;
    if (!f->is_string()) throw bad_body(fmt::format("field {} must be a string", name));
    return f->get<std::string>();
}

std::optional<bool> bool_field(const Json& body, const char* name) {
    const Json* f = field(body, name);
    if (!f) return std::nullopt;
    if (!f->is_boolean()) throw bad_body(fmt::format("field {} must be true or false", name));
    return f->get<bool>();
}

std::optional<double> number_field(const Json& body, const char* name) {
    const Json* f = field(body, name);
    if (!f) return std::nullopt;
    if (!f->is_number()) throw bad_body(fmt::format("field {} must be a number", name));
    return f->get<double>();
}

std::vector<std::pair<std::string, double>> attributes(const Json& body) {
    std::vector<std::pair<std::string, double>> out;
    const Json* attrs = field(body, "attributes");
    if (!attrs) return out;
    if (!attrs->is_object()) throw bad_body("field attributes must be an object");
    for (const auto& [key, value] : attrs->items()) {
        if (!value.is_number()) throw bad_body(fmt::format("attribute {} must be a number", key));
        out.emplace_back(key, value.get<double>());
    }
    return out;
}

}  // namespace

ApiError bad_body(const std::string& why) {
    return ApiError(400, "bad request body: " + why);
}

Json toxic_json(const testkit::Toxic& toxic) {
    Json attrs = Json::object();
    for (const std::string& key : testkit::toxic_attributes(toxic.type))
        if (toxic.has(key)) attrs[key] = number(toxic.get(key));
    Json j;
    j["attributes"] = std::move(attrs);
    j["name"] = toxic.name;
    j["type"] = toxic.type;
    j["stream"] = testkit::direction_name(toxic.direction);
    j["toxicity"] = number(toxic.toxicity);
    return j;
}

Json proxy_json(const testkit::ProxyState& proxy) {
    Json j;
    j["name"] = proxy.config.name;
    j["listen"] = proxy.config.listen;
    j["upstream"] = proxy.config.upstream;
    j["enabled"] = proxy.config.enabled;
    if (proxy.config.protocol == Protocol::udp) j["protocol"] = "udp";
    j["toxics"] = Json::array();
    for (const testkit::Toxic& t : proxy.toxics)
        j["toxics"].push_back(toxic_json(t));
    return j;
}

testkit::Toxic toxic_from_json(const Json& body, const testkit::ToxicRules& rules) {
    if (body.is_string()) return testkit::parse_toxic(body.get<std::string>());
    if (!body.is_object()) throw bad_body("a toxic is a JSON object");
    const std::string type = string_field(body, "type").value_or("");
    std::optional<std::string> stream = string_field(body, "stream");
    if (!stream) stream = string_field(body, "direction");
    Direction direction = Direction::down;
    if (stream) {
        try {
            direction = testkit::parse_direction(*stream);
        } catch (const testkit::ToxicError&) {
            throw ApiError(400, "stream was invalid, can be either upstream or downstream");
        }
    }
    if (!testkit::is_toxic_type(type)) throw ApiError(400, "invalid toxic type");
    auto given = attributes(body);
    if (const auto toxicity = number_field(body, "toxicity"))
        given.emplace_back("toxicity", *toxicity);
    return testkit::make_toxic(type, direction, given, string_field(body, "name").value_or(""),
                               rules);
}

testkit::ToxicChange toxic_change_from_json(const Json& body) {
    if (!body.is_object()) throw bad_body("a toxic is a JSON object");
    testkit::ToxicChange change;
    change.toxicity = number_field(body, "toxicity");
    change.attributes = attributes(body);
    return change;
}

ProxyEntry proxy_entry_from_json(const Json& body, const std::string& where,
                                 const testkit::ToxicRules& rules,
                                 const std::string& default_name) {
    if (!body.is_object()) throw bad_body("a proxy is a JSON object");
    ProxyEntry entry;
    testkit::ProxyConfig& c = entry.config;
    c.name = string_field(body, "name").value_or(default_name);
    c.upstream = string_field(body, "upstream").value_or("");
    c.listen = string_field(body, "listen").value_or("");
    c.enabled = bool_field(body, "enabled").value_or(true);
    if (const auto protocol = string_field(body, "protocol")) {
        if (*protocol != "tcp" && *protocol != "udp")
            throw bad_body(fmt::format("protocol must be tcp or udp, not '{}'", *protocol));
        c.protocol = *protocol == "udp" ? Protocol::udp : Protocol::tcp;
    }
    if (c.name.empty()) throw ApiError(400, "missing required field: name" + where);
    if (c.upstream.empty()) throw ApiError(400, "missing required field: upstream" + where);
    if (const Json* toxics = field(body, "toxics")) {
        if (!toxics->is_array()) throw bad_body("field toxics must be a list");
        for (std::size_t i = 0; i < toxics->size(); ++i) {
            try {
                entry.toxics.push_back(toxic_from_json((*toxics)[i], rules));
            } catch (const std::exception& e) {
                throw ApiError(400, fmt::format("toxic {}{}: {}", i + 1, where, e.what()));
            }
        }
    }
    return entry;
}

testkit::ProxyChange proxy_change_from_json(const Json& body) {
    if (!body.is_object()) throw bad_body("a proxy is a JSON object");
    testkit::ProxyChange change;
    change.listen = string_field(body, "listen");
    change.upstream = string_field(body, "upstream");
    change.enabled = bool_field(body, "enabled");
    return change;
}

Json parse_body(const std::string& text) {
    if (text.empty()) throw bad_body("EOF");
    try {
        return Json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        // Not only parse_error: a number too large for a double (1e99999) is out_of_range.
        // nlohmann's text starts "[json.exception.parse_error.101] parse error at ...": keep the
        // part after the bracket, the reason itself.
        std::string why = e.what();
        if (const std::size_t close = why.find("] "); close != std::string::npos)
            why = why.substr(close + 2);
        throw bad_body(why);
    }
}

}  // namespace ferry::cli::proxy
