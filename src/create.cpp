#include "ferry/create.hpp"

#include <exception>

#include "ferry/error.hpp"

namespace ferry {

Socket create_connection(std::string_view host, std::string_view service,
                         const ConnectOptions& options) {
    const Deadline deadline = deadline_after(options.timeout);
    ResolveHints hints;
    hints.family = options.family;
    hints.socktype = options.socktype;
    const auto candidates = resolve(host, service, hints);

    std::exception_ptr last;
    for (const Resolved& r : candidates) {
        try {
            Socket s(r.family, r.socktype, r.protocol);
            if (deadline) {
                const auto left = *deadline - Clock::now();
                if (left <= Duration::zero())
                    throw TimeoutError("connect to " + r.address.to_string());
                s.set_timeout(left);
            }
            s.connect(r.address);
            s.set_timeout(options.timeout);
            return s;
        } catch (const Error&) {
            last = std::current_exception();
        }
    }
    std::rethrow_exception(last);  // resolve() never returns an empty list
}

Socket create_server(std::string_view host, std::string_view service,
                     const ServerOptions& options) {
    ResolveHints hints;
    hints.family = options.family;
    hints.socktype = options.socktype;
    hints.passive = true;
    const auto candidates = resolve(host, service, hints);

    std::exception_ptr last;
    for (const Resolved& r : candidates) {
        try {
            Socket s(r.family, r.socktype, r.protocol);
            // SO_REUSEADDR exists to rebind over TIME_WAIT connections; on a
            // datagram socket there are none, and it would instead let a second
            // server bind the same port silently (socket(7)).
            if (options.reuse_address && r.socktype != SOCK_DGRAM) s.set_reuse_address(true);
            if (options.reuse_port) s.set_reuse_port(true);
            if (r.family == AF_INET6) s.set_v6_only(true);
            s.bind(r.address);
            if (options.socktype == SOCK_STREAM || options.socktype == SOCK_SEQPACKET)
                s.listen(options.backlog);
            return s;
        } catch (const Error&) {
            last = std::current_exception();
        }
    }
    std::rethrow_exception(last);
}

}  // namespace ferry
