// Test support: a StreamServer run on a thread of its own for the length of a scope.
#pragma once

#include <exception>
#include <string>
#include <thread>

#include "ferry/server/stream_server.hpp"

namespace ferry::test {

/// A server running on its own thread, stopped and joined on destruction;
/// what run() threw, if anything, is in `failure` from then on.
class Running {
  public:
    Running(StreamServer& server, std::string& failure)
        : server_(server), failure_(failure), thread_([this] { run(); }) {}
    ~Running() {
        server_.stop();
        thread_.join();
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

  private:
    void run() {
        try {
            server_.run();
        } catch (const std::exception& e) {
            failure_ = e.what();
        }
    }
    StreamServer& server_;
    std::string& failure_;
    std::thread thread_;
};

}  // namespace ferry::test
