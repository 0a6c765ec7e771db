// SPDX-License-Identifier: BSL-1.0
// Serves the echo view on a free port, sends it one message with the testing
// client and checks the answer. Exits 0 on success, 1 with a message otherwise.

#include <mallard/mallard.hpp>
#include <mallard/testing/client.hpp>

#include <exception>
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
std::string exchange(unsigned short port)
{
    mallard::testing::client c{port, "/ws/echo"};
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

int main()
{
    std::string failure;
    try {
        mallard::server srv{{.port = 0, .threads = 1, .handle_signals = false},
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
            failure = exchange(srv.port());
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
    std::cout << "consumer: echo through mallard " << MALLARD_VERSION_MAJOR << '.'
              << MALLARD_VERSION_MINOR << '.' << MALLARD_VERSION_PATCH << " works\n";
    return 0;
}
