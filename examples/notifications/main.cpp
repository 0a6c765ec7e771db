// SPDX-License-Identifier: BSL-1.0
// Server-pushed notifications: each client gets "Notification #N" every
// --interval-ms from a task spawned for its connection. The task ends when
// the client leaves, and awaiting send_text paces it to the client.

#include <mallard/mallard.hpp>

#include "../common/example_args.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>

class notifications_view : public mallard::websocket_view {
public:
    explicit notifications_view(std::chrono::milliseconds interval) : interval_(interval) {}

    mallard::task<> on_open() override
    {
        spawn(push_notifications());
        co_return;
    }

private:
    mallard::task<> push_notifications()
    {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        for (unsigned n = 1;; ++n) {
            timer.expires_after(interval_);
            co_await timer.async_wait(boost::asio::use_awaitable); // throws when cancelled
            if (co_await send_text("Notification #" + std::to_string(n)) ==
                mallard::send_status::closed)
                co_return;
        }
    }

    std::chrono::milliseconds interval_;
};

int main(int argc, char** argv)
{
    auto args = examples::parse_args(argc, argv, "mallard_notifications", {}, {"--interval-ms"});
    if (!args)
        return 2;
    unsigned interval_ms = 0;
    if (!examples::parse_number(args->value("--interval-ms", "5000"), interval_ms) ||
        interval_ms == 0) {
        std::cerr << "mallard_notifications: --interval-ms takes a positive number\n";
        return 2;
    }
    try {
        auto const interval = std::chrono::milliseconds(interval_ms);
        mallard::router urls{mallard::path(
            "/ws/notifications",
            [interval] { return std::make_unique<notifications_view>(interval); },
            "notifications")};
        mallard::server srv{args->options, std::move(urls)};
        examples::announce(srv, *args);
        srv.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_notifications: " << e.what() << '\n';
        return 1;
    }
}
