// SPDX-License-Identifier: BSL-1.0
// The server the session fuzzer attacks: a real mallard::server on
// 127.0.0.1, in this process (so AddressSanitizer sees its memory errors and
// libFuzzer its coverage), with two routes that between them reach most of
// a session's code, and a health check that proves it still serves.

#ifndef MALLARD_TESTS_FUZZ_FUZZ_SERVER_HPP
#define MALLARD_TESTS_FUZZ_FUZZ_SERVER_HPP

#include <mallard/mallard.hpp>
#include <mallard/testing/client.hpp>

#include "../../examples/echo/exact_echo_view.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <thread>

namespace fuzz {

using namespace std::chrono_literals;

/// The library's defaults but for small frame and message limits, so that
/// inputs of a few KiB reach the limit checks (fragments adding up past the
/// message limit, a frame just over). It greets on open, so that a send is
/// under way while the first frames are read, and speaks two subprotocols,
/// so that the client's offer is parsed.
class plain_view : public mallard::websocket_view {
public:
    static constexpr std::size_t max_frame_size = 1024;
    static constexpr std::size_t max_message_size = 4096;
    static constexpr std::string_view subprotocols[] = {"chat.v2", "chat.v1"};

    mallard::task<> on_open() override { co_await send_text("hello"); }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (op == mallard::opcode::text)
            co_await send_text("You sent " + std::string(data));
        else
            co_await send_binary(data);
    }
};

inline constexpr std::string_view exact_echo_path = "/ws/echo";
inline constexpr std::string_view plain_path = "/ws/plain";

/// Log records at error level mean an exception reached a place where the
/// server had to catch it blindly (an event loop, the acceptor): these views
/// never throw, so no client input should cause one. Such a record is a
/// finding; abort so that libFuzzer saves the input being run.
inline mallard::logger fuzz_logger()
{
    return {mallard::log_level::warning,
            [](mallard::log_level level, mallard::log_category, std::string_view text) {
                std::fprintf(stderr, "session_fuzzer: server %s: %.*s\n",
                             std::string(mallard::to_string(level)).c_str(),
                             static_cast<int>(text.size()), text.data());
                if (level >= mallard::log_level::error) {
                    std::fprintf(stderr, "session_fuzzer: FINDING: the server logged an error\n");
                    std::abort();
                }
            }};
}

/// The server, started on construction and stopped on destruction.
class fuzz_server {
public:
    fuzz_server()
        : server_({.port = 0,
                   // One thread. With two, Asio's per-thread recycling of
                   // handler memory moves blocks between the threads, so the
                   // process never gets back to the allocation count it had
                   // before an input, and libFuzzer's leak check would scan
                   // the heap after nearly every input (see
                   // allocation_balance.hpp): about 200 inputs a second
                   // instead of 700. Threads are the concurrency tests' job.
                   .threads = 1,
                   .log = fuzz_logger(),
                   .handshake_timeout = 2s,
                   .shutdown_grace = 2s,
                   .handle_signals = false},
                  mallard::router{
                      mallard::path<examples::exact_echo_view>(exact_echo_path, "echo"),
                      mallard::path<plain_view>(plain_path, "plain",
                                                {.allowed_origins = {"https://example.com"}}),
                  })
        , thread_([this] { server_.run(); })
    {
    }
    fuzz_server(fuzz_server const&) = delete;
    fuzz_server& operator=(fuzz_server const&) = delete;
    ~fuzz_server() { stop(); }

    unsigned short port() const { return server_.port(); }
    std::size_t connection_count() const { return server_.connection_count(); }

    /// Stops the server and waits until run() has returned.
    void stop()
    {
        server_.stop();
        if (thread_.joinable())
            thread_.join();
    }

    /** Whether a well-formed client still gets its echo and a clean close
        on a fresh connection; prints why not. The deadline is generous: a
        legal but heavy input (16 MiB inflated under the sanitizers) may still
        be occupying the server's thread. */
    bool answers_echo() const
    {
        std::string const probe = "health check: \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
        try {
            mallard::testing::client c{port(), std::string(exact_echo_path), 10s};
            c.send_text(probe, 10s);
            auto const reply = c.receive(10s);
            if (!reply || reply->data != probe || reply->op != mallard::opcode::text) {
                std::fprintf(stderr, "session_fuzzer: health check: wrong or no echo\n");
                return false;
            }
            c.close(mallard::close_code::normal, {}, 10s);
            if (c.close_code() != mallard::close_code::normal) {
                std::fprintf(stderr, "session_fuzzer: health check: close code %d, not 1000\n",
                             c.close_code() ? static_cast<int>(*c.close_code()) : -1);
                return false;
            }
            return true;
        } catch (std::exception const& e) {
            std::fprintf(stderr, "session_fuzzer: health check failed: %s\n", e.what());
            return false;
        }
    }

private:
    mallard::server server_;
    std::thread thread_;
};

} // namespace fuzz

#endif
