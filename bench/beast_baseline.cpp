// SPDX-License-Identifier: BSL-1.0
// mallard_beast_baseline: the raw Beast server the benchmarks compare mallard
// with, written as a user would write a minimal one with Beast and C++20
// coroutines: one io_context run by one thread, a
// websocket::stream<beast::tcp_stream> per connection, async_read then
// async_write per message, and Beast's defaults for everything else (no
// timeouts, no TCP_NODELAY, automatic fragmentation): nothing here is tuned.
//
//   /ws/echo       echoes every message unchanged
//   /ws/broadcast  sends every message it receives to every client of this
//                  path, the sender included: the naive way, a copy of the
//                  message per client in that client's own write queue
//                  (Beast allows one write in flight per stream)
//
// Takes --port N (0 = a free port) and prints "listening on
// ws://127.0.0.1:PORT" first, like the mallard server under test.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <charconv>
#include <deque>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using net::use_awaitable;

namespace {

using ws_stream = websocket::stream<beast::tcp_stream>;

net::awaitable<void> echo(ws_stream ws, http::request<http::string_body> req)
{
    co_await ws.async_accept(req, use_awaitable);
    beast::flat_buffer buffer;
    for (;;) {
        co_await ws.async_read(buffer, use_awaitable);
        ws.text(ws.got_text());
        co_await ws.async_write(buffer.data(), use_awaitable);
        buffer.consume(buffer.size());
    }
}

struct subscriber {
    explicit subscriber(ws_stream&& s) : ws(std::move(s)) {}

    ws_stream ws;
    std::deque<std::pair<bool, std::string>> queue; // (text?, payload)
    bool writing = false;
};

std::set<std::shared_ptr<subscriber>> subscribers; // one thread: no lock

net::awaitable<void> write_queue(std::shared_ptr<subscriber> s)
{
    try {
        while (!s->queue.empty()) {
            s->ws.text(s->queue.front().first);
            co_await s->ws.async_write(net::buffer(s->queue.front().second), use_awaitable);
            s->queue.pop_front();
        }
    } catch (std::exception const&) {
        s->queue.clear();
    }
    s->writing = false;
}

net::awaitable<void> broadcast(ws_stream ws, http::request<http::string_body> req)
{
    auto self = std::make_shared<subscriber>(std::move(ws));
    co_await self->ws.async_accept(req, use_awaitable);
    subscribers.insert(self);
    try {
        beast::flat_buffer buffer;
        for (;;) {
            co_await self->ws.async_read(buffer, use_awaitable);
            bool const text = self->ws.got_text();
            std::string const message = beast::buffers_to_string(buffer.data());
            buffer.consume(buffer.size());
            for (auto const& s : subscribers) {
                s->queue.emplace_back(text, message); // a copy per client
                if (!s->writing) {
                    s->writing = true;
                    net::co_spawn(s->ws.get_executor(), write_queue(s), net::detached);
                }
            }
        }
    } catch (std::exception const&) {
    }
    subscribers.erase(self);
}

net::awaitable<void> session(tcp::socket socket)
{
    try {
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        http::request<http::string_body> req;
        co_await http::async_read(stream, buffer, req, use_awaitable);
        if (!websocket::is_upgrade(req))
            co_return;
        if (req.target() == "/ws/echo")
            co_await echo(ws_stream(std::move(stream)), std::move(req));
        else if (req.target() == "/ws/broadcast")
            co_await broadcast(ws_stream(std::move(stream)), std::move(req));
    } catch (std::exception const&) {
        // the client went away or closed: the session ends
    }
}

net::awaitable<void> listen(tcp::acceptor& acceptor)
{
    auto const ex = co_await net::this_coro::executor;
    net::steady_timer pause(ex);
    while (acceptor.is_open()) {
        auto [ec, socket] = co_await acceptor.async_accept(net::as_tuple(use_awaitable));
        if (ec == net::error::operation_aborted)
            break;
        if (ec) { // out of descriptors, most likely: do not spin
            pause.expires_after(std::chrono::milliseconds(10));
            co_await pause.async_wait(net::as_tuple(use_awaitable));
            continue;
        }
        net::co_spawn(ex, session(std::move(socket)), net::detached);
    }
}

} // namespace

int main(int argc, char** argv)
{
    unsigned short port = 8080;
    for (int i = 1; i < argc; ++i) {
        std::string_view const arg = argv[i];
        std::string_view const value = i + 1 < argc ? argv[i + 1] : "";
        bool ok = i + 1 < argc;
        if (ok && arg == "--port")
            ok = std::from_chars(value.data(), value.data() + value.size(), port).ptr ==
                 value.data() + value.size();
        else if (ok && arg == "--threads")
            ok = value == "1"; // one thread, always
        else
            ok = false;
        if (!ok) {
            std::cerr << "usage: mallard_beast_baseline [--port N] [--threads 1]\n";
            return 2;
        }
        ++i;
    }
    try {
        net::io_context ioc{1};
        tcp::acceptor acceptor(ioc);
        tcp::endpoint const endpoint(net::ip::make_address("127.0.0.1"), port);
        acceptor.open(endpoint.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(net::socket_base::max_listen_connections);
        std::cout << "listening on ws://127.0.0.1:" << acceptor.local_endpoint().port()
                  << std::endl;

        net::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
        net::co_spawn(ioc, listen(acceptor), net::detached);
        ioc.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_beast_baseline: " << e.what() << '\n';
        return 1;
    }
}
