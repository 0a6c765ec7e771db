// SPDX-License-Identifier: BSL-1.0
// Serves the echo view on a free port, sends it one message with the testing
// client and checks the answer. Exits 0 on success, 1 with a message otherwise.
// Built with CONSUMER_TLS, it does so over wss://, with the certificate and
// key files given as its two arguments.

#include <mallard/mallard.hpp>
#include <mallard/testing/client.hpp>
#ifdef CONSUMER_TLS
#include <mallard/testing/tls_client.hpp>
#include <mallard/tls.hpp>
#endif

#include <exception>
#include <stdexcept>
#include <iostream>
#include <string>
#include <thread>

class echo_view : public mallard::websocket_view {
public:
    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (op == mallard::opcode::text)
            co_await send_text("You sent " + std::string(data));
    }
};

namespace {

// Talks to the server; returns what went wrong, or an empty string.
std::string exchange(unsigned short port, [[maybe_unused]] char const* certificate)
{
#ifdef CONSUMER_TLS
    mallard::testing::tls_client c{port, "/ws/echo", {.certificate_file = certificate}};
#else
    mallard::testing::client c{port, "/ws/echo"};
#endif
    c.send_text("hi");
    auto reply = c.receive();
    if (!reply)
        return "the server closed the connection instead of answering";
    if (reply->data != "You sent hi")
        return "expected \"You sent hi\", got \"" + reply->data + "\"";
    c.close();
    return {};
}

} // namespace

int main([[maybe_unused]] int argc, [[maybe_unused]] char** argv)
{
    std::string failure;
    char const* certificate = nullptr;
    try {
        mallard::server_options options{.port = 0, .threads = 1, .handle_signals = false};
#ifdef CONSUMER_TLS
        if (argc != 3)
            throw std::invalid_argument("usage: consumer CERTIFICATE.pem KEY.pem");
        certificate = argv[1];
        options.tls = mallard::load_tls({.certificate_chain_file = argv[1],
                                         .private_key_file = argv[2]});
#endif
        mallard::server srv{options,
                            mallard::router{mallard::path<echo_view>("/ws/echo", "echo")}};
        std::exception_ptr run_error;
        std::thread runner{[&] {
            try {
                srv.run();
            } catch (...) {
                run_error = std::current_exception();
            }
        }};
        try {
            failure = exchange(srv.port(), certificate);
        } catch (std::exception const& e) {
            failure = e.what();
        }
        srv.stop();
        runner.join();
        if (run_error && failure.empty())
            std::rethrow_exception(run_error);
    } catch (std::exception const& e) {
        failure = e.what();
    }
    if (!failure.empty()) {
        std::cerr << "consumer: " << failure << '\n';
        return 1;
    }
#ifdef CONSUMER_TLS
    std::cout << "consumer: echo over wss:// through mallard " << MALLARD_VERSION_MAJOR << '.'
#else
    std::cout << "consumer: echo through mallard " << MALLARD_VERSION_MAJOR << '.'
#endif
              << MALLARD_VERSION_MINOR << '.' << MALLARD_VERSION_PATCH << " works\n";
    return 0;
}
