// `ferry proxy --api`: Toxiproxy 2.x's HTTP API. cpp-httplib parses HTTP on its own threads;
// each handler decodes the body there, then runs the change on the loop's thread, where the
// relays live (call_on_loop), and answers in Toxiproxy's shapes and status codes.
#include "proxy/api.hpp"

#include <fmt/core.h>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "proxy/toxiproxy_json.hpp"

namespace ferry::cli::proxy {
namespace {

using testkit::call_on_loop;
using testkit::FaultProxy;
using testkit::ProxyError;

constexpr std::size_t kMaxBody = 1 << 20;  // a populate of thousands of proxies fits
constexpr const char* kJson = "application/json";

/// JSON text even when a string holds bytes that are not UTF-8 (an error quoting a bad
/// body, a name from a request's path): those become U+FFFD instead of an exception.
std::string json_text(const Json& body) {
    return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void answer_json(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(json_text(body), kJson);
}

/// Toxiproxy's error body; like Toxiproxy (Go's http.Error), as text/plain with a newline.
void answer_error(httplib::Response& res, int status, const std::string& message) {
    Json body;
    body["error"] = message;
    body["status"] = status;
    res.status = status;
    res.set_content(json_text(body) + "\n", "text/plain; charset=utf-8");
}

int status_of(const ProxyError& e) {
    switch (e.kind()) {
        case ProxyError::Kind::invalid:
            return 400;
        case ProxyError::Kind::not_found:
            return 404;
        case ProxyError::Kind::exists:
            return 409;
        case ProxyError::Kind::start:
            return 500;
    }
    return 500;
}

/// The toxics a create or populate body brings, checked against its proxy before anything
/// is created: a toxic for the other protocol is 400, two of one name 409.
void check_toxics(const ProxyEntry& entry) {
    for (std::size_t i = 0; i < entry.toxics.size(); ++i) {
        const testkit::Toxic& t = entry.toxics[i];
        if (!t.applies_to(entry.config.protocol))
            throw ApiError(
                400, fmt::format("toxic '{}' is not for {} proxies", t.type,
                                 entry.config.protocol == testkit::Protocol::tcp ? "TCP" : "UDP"));
        for (std::size_t j = 0; j < i; ++j)
            if (entry.toxics[j].name == t.name) throw ApiError(409, "toxic already exists");
    }
}

/// Runs `fn`, turning every failure into the error answer it stands for.
template <class F>
void guarded(httplib::Response& res, F&& fn) {
    try {
        fn();
    } catch (const ApiError& e) {
        answer_error(res, e.status(), e.what());
    } catch (const ProxyError& e) {
        answer_error(res, status_of(e), e.what());
    } catch (const testkit::ToxicError& e) {
        answer_error(res, 400, e.what());
    } catch (const std::exception& e) {
        answer_error(res, 500, e.what());
    }
}

/// Prometheus's text format: a label value with \, " and newlines escaped.
std::string label(std::string_view value) {
    std::string out;
    for (const char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string metrics_text(const std::vector<testkit::ProxyState>& proxies) {
    struct Metric {
        const char* name;
        const char* type;
        const char* help;
    };
    std::string out;
    auto family = [&out](const Metric& m) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", m.name, m.help, m.name, m.type);
    };
    auto labels = [](const testkit::ProxyState& p, const char* direction) {
        std::string l = direction ? fmt::format("direction=\"{}\",", direction) : std::string();
        return l + fmt::format("listener=\"{}\",proxy=\"{}\",upstream=\"{}\"",
                               label(p.config.listen), label(p.config.name),
                               label(p.config.upstream));
    };
    // Toxiproxy's two counters, with its names and labels (counted live here,
    // where Toxiproxy adds a connection's bytes when it closes).
    family({"toxiproxy_proxy_received_bytes_total", "counter",
            "The total bytes received on a given proxy link"});
    for (const auto& p : proxies) {
        out += fmt::format("toxiproxy_proxy_received_bytes_total{{{}}} {}\n",
                           labels(p, "downstream"), p.counters.received_down);
        out += fmt::format("toxiproxy_proxy_received_bytes_total{{{}}} {}\n", labels(p, "upstream"),
                           p.counters.received_up);
    }
    family({"toxiproxy_proxy_sent_bytes_total", "counter",
            "The total bytes sent on a given proxy link"});
    for (const auto& p : proxies) {
        out += fmt::format("toxiproxy_proxy_sent_bytes_total{{{}}} {}\n", labels(p, "downstream"),
                           p.counters.bytes_down);
        out += fmt::format("toxiproxy_proxy_sent_bytes_total{{{}}} {}\n", labels(p, "upstream"),
                           p.counters.bytes_up);
    }
    const auto per_proxy = [&](const Metric& m, auto value, bool udp_only) {
        family(m);
        for (const auto& p : proxies)
            if (!udp_only || p.config.protocol == testkit::Protocol::udp)
                out += fmt::format("{}{{{}}} {}\n", m.name, labels(p, nullptr), value(p.counters));
    };
    using C = testkit::Counters;
    per_proxy(
        {"ferry_proxy_connections_total", "counter",
         "TCP connections accepted, or UDP client flows started"},
        [](const C& c) { return c.connections; }, false);
    per_proxy(
        {"ferry_proxy_connections_active", "gauge", "TCP connections or UDP flows open now"},
        [](const C& c) { return c.active; }, false);
    per_proxy(
        {"ferry_proxy_refused_total", "counter",
         "Upstream connects that failed (TCP) or refusals seen (UDP)"},
        [](const C& c) { return c.refused; }, false);
    family({"ferry_proxy_spliced_bytes_total", "counter",
            "TCP bytes sent with splice(2), never copied through the proxy (of sent_bytes)"});
    for (const auto& p : proxies) {
        if (p.config.protocol != testkit::Protocol::tcp) continue;
        out += fmt::format("ferry_proxy_spliced_bytes_total{{{}}} {}\n", labels(p, "upstream"),
                           p.counters.spliced_up);
        out += fmt::format("ferry_proxy_spliced_bytes_total{{{}}} {}\n", labels(p, "downstream"),
                           p.counters.spliced_down);
    }
    family({"ferry_proxy_datagrams_total", "counter", "UDP datagrams received"});
    for (const auto& p : proxies) {
        if (p.config.protocol != testkit::Protocol::udp) continue;
        out += fmt::format("ferry_proxy_datagrams_total{{{}}} {}\n", labels(p, "upstream"),
                           p.counters.datagrams_up);
        out += fmt::format("ferry_proxy_datagrams_total{{{}}} {}\n", labels(p, "downstream"),
                           p.counters.datagrams_down);
    }
    per_proxy(
        {"ferry_proxy_datagrams_dropped_total", "counter", "UDP datagrams dropped"},
        [](const C& c) { return c.effects.dropped; }, true);
    per_proxy(
        {"ferry_proxy_datagrams_duplicated_total", "counter", "UDP datagrams duplicated"},
        [](const C& c) { return c.effects.duplicated; }, true);
    per_proxy(
        {"ferry_proxy_datagrams_reordered_total", "counter", "UDP datagrams reordered"},
        [](const C& c) { return c.effects.reordered; }, true);
    per_proxy(
        {"ferry_proxy_datagrams_corrupted_total", "counter", "UDP datagrams corrupted"},
        [](const C& c) { return c.effects.corrupted; }, true);
    return out;
}

/// Shuts down the reading side (without closing: cpp-httplib owns them) of
/// this process's connected sockets whose local end is `local`: the API's
/// clients. cpp-httplib 0.11 cannot end the connections it serves, and a
/// worker reading a request that never completes (or waiting for a
/// keep-alive client's next one) would hold stop() for its read timeout; end
/// of stream wakes it at once, while a response being written still goes out.
void shut_down_reading_at(const Address& local) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", error)) {
        int fd = -1;
        try {
            fd = std::stoi(entry.path().filename().string());
        } catch (const std::exception&) {
            continue;
        }
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        sockaddr_storage name{};
        socklen_t length = sizeof name;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&name), &length) != 0) continue;
        if (!(Address(reinterpret_cast<const sockaddr*>(&name), length) == local)) continue;
        sockaddr_storage peer{};
        socklen_t peer_length = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0)
            continue;  // the listener
        ::shutdown(fd, SHUT_RD);
    }
}

}  // namespace

ApiServer::ApiServer(FaultProxy& proxy, const Address& address, std::string version)
    : proxy_(proxy),
      loop_(proxy.loop()),
      version_(std::move(version)),
      http_(std::make_unique<httplib::Server>()) {
    // Bound here first, through ferry, for the error a user should read
    // ("bind to 127.0.0.1:8474: Address already in use"), and for the port 0 picks.
    ServerOptions options;
    options.family = address.family();
    Socket probe = create_server(address.host(), std::to_string(address.port()), options);
    address_ = probe.local_address();
    probe.close();
    if (!http_->bind_to_port(address_.host(), address_.port()))
        throw Error(std::make_error_code(std::errc::address_in_use),
                    "bind to " + address_.to_string());
    http_->set_payload_max_length(kMaxBody);
    http_->set_keep_alive_timeout(1);  // so that stop() does not wait long for idle clients
    // An idle client holds a worker thread (and stop()) at most this long.
    http_->set_read_timeout(std::chrono::seconds(2));
    add_api_routes(*http_, proxy_, version_);
}

ApiServer::~ApiServer() {
    if (thread_.joinable()) {
        http_->stop();
        thread_.join();
    }
}

void ApiServer::start() {
    thread_ = std::thread([this] {
        http_->listen_after_bind();
        finished_ = true;
        loop_.post([] {});  // wakes stop(), which runs the loop until this thread is done
    });
}

void ApiServer::stop() {
    if (!thread_.joinable()) return;
    http_->stop();  // no new client from here on
    // Requests already read are answered (their changes run on this loop, run
    // below); nothing more is read, so a slow or silent client cannot hold the
    // stop.
    shut_down_reading_at(address_);
    while (!finished_)
        loop_.run_once(std::chrono::milliseconds(50));
    thread_.join();
}

void add_api_routes(httplib::Server& s, FaultProxy& p, const std::string& version) {
    EventLoop& loop = p.loop();
    // A web page must not drive the proxy from a browser (Toxiproxy refuses these too).
    s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
        if (req.get_header_value("User-Agent").rfind("Mozilla/", 0) == 0) {
            res.status = 403;
            res.set_content("User agent not allowed\n", "text/plain; charset=utf-8");
            return httplib::Server::HandlerResponse::Handled;
        }
        // A request with neither Content-Length nor Transfer-Encoding has an empty body
        // (RFC 9112, 6.3), as `curl -X POST .../reset` sends it; cpp-httplib 0.11 would
        // read such a POST to the end of the connection and answer 400. The request is
        // the server's own, non-const object: saying its length is 0 is what it means.
        if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
            const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
        return httplib::Server::HandlerResponse::Unhandled;
    });
    s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 404) res.set_content("404 page not found\n", "text/plain; charset=utf-8");
        if (res.status == 413) answer_error(res, 413, "request body too large");
    });

    s.Get("/version", [version](const httplib::Request&, httplib::Response& res) {
        res.set_content(fmt::format("{{\"version\": \"{}\"}}\n", version),
                        "application/json;charset=utf-8");
    });

    s.Get("/proxies", [&p, &loop](const httplib::Request&, httplib::Response& res) {
        guarded(res, [&] {
            Json all = Json::object();
            for (const auto& proxy : call_on_loop(loop, [&] { return p.list(); }))
                all[proxy.config.name] = proxy_json(proxy);
            answer_json(res, 200, all);
        });
    });

    s.Post("/proxies", [&p, &loop](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const ProxyEntry entry =
                proxy_entry_from_json(parse_body(req.body), "", kToxiproxyRules);
            check_toxics(entry);
            const auto state = call_on_loop(loop, [&] {
                auto created = p.create(entry.config);
                for (const auto& t : entry.toxics)
                    p.add_toxic(entry.config.name, t);
                return p.get(entry.config.name);
            });
            answer_json(res, 201, proxy_json(state));
        });
    });

    s.Post("/populate", [&p, &loop](const httplib::Request& req, httplib::Response& res) {
        std::vector<testkit::ProxyState> applied;
        try {
            const Json body = parse_body(req.body);
            if (!body.is_array()) throw bad_body("expected a list of proxies");
            // Every entry is checked before any is applied: one bad entry creates none.
            std::vector<ProxyEntry> entries;
            for (std::size_t i = 0; i < body.size(); ++i) {
                entries.push_back(proxy_entry_from_json(body[i], fmt::format(" at proxy {}", i + 1),
                                                        kToxiproxyRules));
                check_toxics(entries.back());
            }
            // Then in order: the first that cannot start ends it, keeping those before.
            call_on_loop(loop, [&] {
                for (const ProxyEntry& e : entries) {
                    const std::string& name = e.config.name;
                    if (p.contains(name)) {
                        const auto now = p.get(name);
                        if (now.config.listen == e.config.listen &&
                            now.config.upstream == e.config.upstream &&
                            now.config.protocol == e.config.protocol) {
                            applied.push_back(now);  // the same proxy: left as it is
                            continue;
                        }
                        p.remove(name);  // another proxy under that name: replaced
                    }
                    p.create(e.config);
                    for (const auto& t : e.toxics)
                        p.add_toxic(name, t);
                    applied.push_back(p.get(name));
                }
            });
            Json out;
            out["proxies"] = Json::array();
            for (const auto& a : applied)
                out["proxies"].push_back(proxy_json(a));
            answer_json(res, 201, out);
        } catch (const std::exception& e) {
            // Toxiproxy's populate error: the error, and the proxies applied before it.
            guarded(res, [&] { throw; });
            Json out = Json::parse(res.body);
            out["proxies"] = Json::array();
            for (const auto& a : applied)
                out["proxies"].push_back(proxy_json(a));
            answer_json(res, res.status, out);
        }
    });

    s.Get("/proxies/([^/]+)", [&p, &loop](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const std::string name = req.matches[1];
            answer_json(res, 200, proxy_json(call_on_loop(loop, [&] { return p.get(name); })));
        });
    });

    const auto update = [&p, &loop](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const std::string name = req.matches[1];
            call_on_loop(loop, [&] { return p.get(name); });  // 404 before the body, as Toxiproxy
            const auto change = proxy_change_from_json(parse_body(req.body));
            answer_json(res, 200,
                        proxy_json(call_on_loop(loop, [&] { return p.update(name, change); })));
        });
    };
    s.Post("/proxies/([^/]+)", update);
    s.Patch("/proxies/([^/]+)", update);

    s.Delete("/proxies/([^/]+)", [&p, &loop](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const std::string name = req.matches[1];
            call_on_loop(loop, [&] { p.remove(name); });
            res.status = 204;
        });
    });

    s.Get("/proxies/([^/]+)/toxics",
          [&p, &loop](const httplib::Request& req, httplib::Response& res) {
              guarded(res, [&] {
                  const std::string name = req.matches[1];
                  Json list = Json::array();
                  for (const auto& t : call_on_loop(loop, [&] { return p.get(name).toxics; }))
                      list.push_back(toxic_json(t));
                  answer_json(res, 200, list);
              });
          });

    s.Post("/proxies/([^/]+)/toxics", [&p, &loop](const httplib::Request& req,
                                                  httplib::Response& res) {
        guarded(res, [&] {
            const std::string name = req.matches[1];
            call_on_loop(loop, [&] { return p.get(name); });  // 404 first, as Toxiproxy
            const auto toxic = toxic_from_json(parse_body(req.body), kToxiproxyRules);
            answer_json(res, 200,
                        toxic_json(call_on_loop(loop, [&] { return p.add_toxic(name, toxic); })));
        });
    });

    s.Get("/proxies/([^/]+)/toxics/([^/]+)", [&p, &loop](const httplib::Request& req,
                                                         httplib::Response& res) {
        guarded(res, [&] {
            const std::string name = req.matches[1], toxic = req.matches[2];
            answer_json(res, 200,
                        toxic_json(call_on_loop(loop, [&] { return p.get_toxic(name, toxic); })));
        });
    });

    const auto update_toxic = [&p, &loop](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const std::string name = req.matches[1], toxic = req.matches[2];
            call_on_loop(loop, [&] { return p.get_toxic(name, toxic); });  // 404 first
            const auto change = toxic_change_from_json(parse_body(req.body));
            answer_json(res, 200, toxic_json(call_on_loop(loop, [&] {
                            return p.update_toxic(name, toxic, change, kToxiproxyRules);
                        })));
        });
    };
    s.Post("/proxies/([^/]+)/toxics/([^/]+)", update_toxic);
    s.Patch("/proxies/([^/]+)/toxics/([^/]+)", update_toxic);

    s.Delete("/proxies/([^/]+)/toxics/([^/]+)",
             [&p, &loop](const httplib::Request& req, httplib::Response& res) {
                 guarded(res, [&] {
                     const std::string name = req.matches[1], toxic = req.matches[2];
                     call_on_loop(loop, [&] { p.remove_toxic(name, toxic); });
                     res.status = 204;
                 });
             });

    s.Post("/reset", [&p, &loop](const httplib::Request&, httplib::Response& res) {
        guarded(res, [&] {
            call_on_loop(loop, [&] { p.reset(); });
            res.status = 204;
        });
    });

    s.Get("/metrics", [&p, &loop](const httplib::Request&, httplib::Response& res) {
        guarded(res, [&] {
            res.set_content(metrics_text(call_on_loop(loop, [&] { return p.list(); })),
                            "text/plain; version=0.0.4; charset=utf-8");
        });
    });
}

}  // namespace ferry::cli::proxy
