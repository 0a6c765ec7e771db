// SPDX-License-Identifier: BSL-1.0
// Many threads at once: connections on 8 server threads sending to each
// other, many foreign threads sending to one connection, and churn. These are
// the tests the ThreadSanitizer build exists for.

#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test::probe;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int connection_count = 64; // sanitizers cost 5-15x; keep the run short
#else
constexpr int connection_count = 256;
#endif

/// Connection handles by client number, shared by every server thread.
class directory {
public:
    explicit directory(std::size_t size) : handles_(size) {}

    void set(std::size_t index, mallard::connection c)
    {
        std::lock_guard lock(mutex_);
        handles_.at(index) = std::move(c);
    }

    mallard::connection get(std::size_t index) const
    {
        std::lock_guard lock(mutex_);
        return handles_.at(index);
    }

private:
    mutable std::mutex mutex_;
    std::vector<mallard::connection> handles_;
};

/// Client k's messages go to client k + 1: "relay" forwards each one there.
class relay_view : public mallard::websocket_view {
public:
    relay_view(directory& d, probe& p) : directory_(d), probe_(p) {}

    mallard::task<> on_open() override
    {
        index_ = std::stoul(request().path_param("index"));
        directory_.set(index_, connection());
        probe_.record("open");
        co_return;
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode) override
    {
        auto const target = (index_ + 1) % connection_count;
        if (directory_.get(target).send_text(data) != mallard::send_status::queued)
            probe_.record("lost");
        co_return;
    }

    mallard::task<> on_close(mallard::close_reason) override
    {
        probe_.record("close");
        co_return;
    }

private:
    directory& directory_;
    probe& probe_;
    std::size_t index_ = 0;
};

} // namespace

TEST_CASE("Hundreds of connections on 8 threads send to each other without loss or reordering",
          "[threads]")
{
    constexpr int messages = 40;
    constexpr int client_threads = 4;
    probe p;
    directory dir(connection_count);
    test::log_capture log;
    test::running_server srv(
        test::test_options(log, 8),
        mallard::router{mallard::path("/relay/<int:index>",
                                      [&] { return std::make_unique<relay_view>(dir, p); },
                                      "relay")});

    std::vector<std::unique_ptr<mallard::testing::client>> clients;
    for (int i = 0; i < connection_count; ++i)
        clients.push_back(
            std::make_unique<mallard::testing::client>(srv.port(), "/relay/" + std::to_string(i)));
    REQUIRE(p.wait_for("open", connection_count));

    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < client_threads; ++t) {
        threads.emplace_back([&, t] {
            try {
                for (int seq = 0; seq < messages; ++seq)
                    for (int i = t; i < connection_count; i += client_threads)
                        clients[i]->send_text(std::to_string(i) + ":" + std::to_string(seq));
                for (int i = t; i < connection_count; i += client_threads) {
                    auto const from = (i + connection_count - 1) % connection_count;
                    for (int seq = 0; seq < messages; ++seq) {
                        auto m = clients[i]->receive(20s);
                        if (!m || m->data != std::to_string(from) + ":" + std::to_string(seq))
                            ++failures;
                    }
                }
            } catch (std::exception const&) {
                ++failures;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    CHECK(failures == 0);
    CHECK(p.count("lost") == 0);
    for (auto& c : clients)
        c->close();
    REQUIRE(p.wait_for("close", connection_count));
}

TEST_CASE("Sends from many threads at once to one connection all arrive, in order per thread",
          "[threads][send]")
{
    constexpr int senders = 8;
    constexpr int per_sender = 500;
    probe p;
    directory dir(1);
    test::log_capture log;
    struct keep_view : mallard::websocket_view {
        keep_view(directory& d, probe& pr) : dir(d), p(pr) {}
        mallard::task<> on_open() override
        {
            dir.set(0, connection());
            p.record("open");
            co_return;
        }
        directory& dir;
        probe& p;
    };
    test::running_server srv(
        test::test_options(log, 4),
        mallard::router{mallard::path("/one", [&] { return std::make_unique<keep_view>(dir, p); },
                                      "one")});
    mallard::testing::client c{srv.port(), "/one"};
    REQUIRE(p.wait_for("open"));
    auto handle = dir.get(0);

    std::vector<std::thread> threads;
    for (int t = 0; t < senders; ++t)
        threads.emplace_back([&, t] {
            for (int seq = 0; seq < per_sender; ++seq)
                (void)handle.send_text(std::to_string(t) + ":" + std::to_string(seq));
        });

    std::vector<int> next(senders, 0);
    bool in_order = true;
    for (int i = 0; i < senders * per_sender; ++i) {
        auto m = c.receive(20s);
        REQUIRE(m);
        auto const colon = m->data.find(':');
        auto const sender = std::stoi(m->data.substr(0, colon));
        auto const seq = std::stoi(m->data.substr(colon + 1));
        in_order = in_order && seq == next.at(sender);
        next[sender] = seq + 1;
    }
    for (auto& t : threads)
        t.join();
    CHECK(in_order);
    for (int t = 0; t < senders; ++t)
        CHECK(next[t] == per_sender);
}

TEST_CASE("Connections opening and closing on many threads leave nothing behind", "[threads]")
{
    constexpr int threads_count = 8;
    constexpr int cycles = connection_count / threads_count;
    probe p;
    directory dir(connection_count);
    test::log_capture log;
    test::running_server srv(
        test::test_options(log, 4),
        mallard::router{mallard::path("/relay/<int:index>",
                                      [&] { return std::make_unique<relay_view>(dir, p); },
                                      "relay")});
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_count; ++t)
        threads.emplace_back([&, t] {
            try {
                for (int i = 0; i < cycles; ++i) {
                    mallard::testing::client c{srv.port(), "/relay/" + std::to_string(t)};
                    if (i % 2 == 0)
                        c.close();
                    else
                        c.drop();
                }
            } catch (std::exception const&) {
                ++failures;
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(failures == 0);
    REQUIRE(p.wait_for("close", threads_count * cycles));
    CHECK(p.count("open") == static_cast<std::size_t>(threads_count * cycles));
    srv.stop();
    CHECK(srv.get().connection_count() == 0);
}
