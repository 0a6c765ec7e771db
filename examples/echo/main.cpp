// SPDX-License-Identifier: BSL-1.0
// The echo example: the quick start of the README, plus --exact, which echoes
// every message unchanged with 16 MiB limits and permessage-deflate offered
// (a testee for conformance suites and benchmarks).

#include <mallard/mallard.hpp>

#include "../common/example_args.hpp"
#include "exact_echo_view.hpp"

#include <iostream>

class echo_view : public mallard::websocket_view {
public:
    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        if (op == mallard::opcode::text)
            co_await send_text("You sent " + std::string(data));
        else
            co_await send_binary(data);
    }
};

int main(int argc, char** argv)
{
    auto args = examples::parse_args(argc, argv, "mallard_echo", {"--exact"},
                                     {"--rate-messages", "--rate-action"});
    if (!args)
        return 2;
    // --rate-messages N: each client may send N messages a second (bursts
    // of N); --rate-action pause|close: what happens over it.
    mallard::route_options route;
    if (auto const rate = args->value("--rate-messages", ""); !rate.empty()) {
        mallard::rate_limit limit;
        if (!examples::parse_number(rate, limit.messages_per_second)) {
            std::cerr << "mallard_echo: --rate-messages takes a number of messages per second\n";
            return 2;
        }
        auto const action = args->value("--rate-action", "pause");
        if (action != "pause" && action != "close") {
            std::cerr << "mallard_echo: --rate-action is pause or close\n";
            return 2;
        }
        limit.action = action == "close" ? mallard::rate_limit_action::close
                                         : mallard::rate_limit_action::pause;
        route.receive_rate = limit;
    }
    try {
        mallard::router urls{
            args->has_flag("--exact")
                ? mallard::path<examples::exact_echo_view>("/ws/echo", "echo", route)
                : mallard::path<echo_view>("/ws/echo", "echo", route)};
        mallard::server srv{args->options, std::move(urls)};
        examples::announce(srv, *args);
        srv.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_echo: " << e.what() << '\n';
        return 1;
    }
}
