// SPDX-License-Identifier: BSL-1.0
// Groups and publish, slow consumers and their policies, stats, and plain
// HTTP beside the WebSockets (health, the user's handler, static files).

#include "support.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using test::probe;

namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
constexpr int subscriber_count = 200; // sanitizers cost 5-15x; keep the run short
#else
constexpr bool sanitized = false;
constexpr int subscriber_count = 1000;
#endif

/// Resident memory of this process, in bytes.
std::size_t resident_bytes()
{
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// Enough file descriptors for a thousand clients and their server sides.
void raise_fd_limit()
{
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
}

/// Joins the group named by its path and records its close.
class member_view : public mallard::websocket_view {
public:
    explicit member_view(probe& p) : probe_(p) {}

    mallard::task<> on_open() override
    {
        join(request().path_param("group"));
        join("everyone");
        probe_.record("open");
        co_return;
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode) override
    {
        // "others:<text>" goes to the rest of the group, anything else to all.
        auto const& group = request().path_param("group");
        if (data.starts_with("others:"))
            publish(group, std::string(data.substr(7)), mallard::opcode::text,
                    mallard::audience::others);
        else
            publish(group, std::string(data));
        co_return;
    }

    mallard::task<> on_close(mallard::close_reason why) override
    {
        probe_.record("close:" + std::string(to_string(why.cause)) + ":" +
                      std::to_string(static_cast<unsigned>(why.code)));
        co_return;
    }

private:
    probe& probe_;
};

mallard::router member_routes(probe& p, mallard::route_options options = {})
{
    return mallard::router{mallard::path(
        "/g/<group>", [&p] { return std::make_unique<member_view>(p); }, "group", options)};
}

std::string numbered(int n, std::size_t size)
{
    auto text = std::to_string(1000000 + n);
    text.resize(size, '.');
    return text;
}

int number_of(std::string const& message) { return std::stoi(message.substr(0, 7)) - 1000000; }

/// What a client got of messages numbered 0 to `messages` - 1, read until
/// the last: how many, and how many runs of them it missed. Each must come
/// after the one before: in order, never repeated.
struct numbered_reads {
    int count = 0;
    int gaps = 0;
};

numbered_reads read_through_last(mallard::testing::client& c, int messages)
{
    numbered_reads got;
    for (int last = -1; last != messages - 1;) {
        auto m = c.receive(20s);
        REQUIRE(m);
        auto const n = number_of(m->data);
        REQUIRE(n > last);
        got.gaps += n != last + 1;
        last = n;
        ++got.count;
    }
    return got;
}

} // namespace

TEST_CASE("One publisher reaches 1,000 subscribers on 4 threads, in publish order", "[groups]")
{
    raise_fd_limit();
    constexpr int messages = 20;
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log, 4), member_routes(p));
    std::vector<std::unique_ptr<mallard::testing::client>> clients;
    for (int i = 0; i < subscriber_count; ++i)
        clients.push_back(std::make_unique<mallard::testing::client>(srv.port(), "/g/news"));
    REQUIRE(p.wait_for("open", subscriber_count));
    CHECK(srv.get().group_size("news") == static_cast<std::size_t>(subscriber_count));

    // From the test's own thread: not a server thread.
    for (int n = 0; n < messages; ++n)
        CHECK(srv.get().publish("news", numbered(n, 16)) ==
              static_cast<std::size_t>(subscriber_count));

    int out_of_order = 0;
    for (auto& c : clients)
        for (int n = 0; n < messages; ++n) {
            auto m = c->receive(20s);
            REQUIRE(m);
            out_of_order += number_of(m->data) != n;
        }
    CHECK(out_of_order == 0);
}

TEST_CASE("A publish reaches the group, and audience::others skips the sender", "[groups]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), member_routes(p));
    mallard::testing::client a{srv.port(), "/g/room"}, b{srv.port(), "/g/room"},
        outsider{srv.port(), "/g/elsewhere"};
    REQUIRE(p.wait_for("open", 3));
    a.send_text("others:from a");
    CHECK(b.receive()->data == "from a");
    a.send_text("to all");
    CHECK(a.receive()->data == "to all"); // "from a" never came back to a
    CHECK(b.receive()->data == "to all");
    outsider.send_text("outside");
    CHECK(outsider.receive()->data == "outside"); // and nothing of room's before it
    CHECK(srv.get().group_size("room") == 2);
    CHECK(srv.get().group_size("everyone") == 3);
}

TEST_CASE("A client that stops reading is closed with 1008 while the others keep up",
          "[groups][slow]")
{
    constexpr int messages = 1000;
    constexpr std::size_t size = 64 * 1024;
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log),
                             member_routes(p, {.max_send_queue_bytes = 1024 * 1024}));
    mallard::testing::client fast1{srv.port(), "/g/feed"}, fast2{srv.port(), "/g/feed"};
    test::raw_connection stalled(srv.port()); // upgrades, then never reads
    stalled.write(test::upgrade_request("/g/feed"));
    REQUIRE(p.wait_for("open", 3));
    auto const memory_before = resident_bytes();

    std::mutex mutex;
    std::condition_variable progress;
    int received[2] = {0, 0};
    std::atomic<int> failures{0};
    auto reader = [&](mallard::testing::client& c, int index) {
        try {
            for (int n = 0; n < messages; ++n) {
                auto m = c.receive(20s);
                if (!m || number_of(m->data) != n)
                    ++failures;
                std::lock_guard lock(mutex);
                received[index] = n + 1;
                progress.notify_all();
            }
        } catch (std::exception const&) {
            ++failures;
            std::lock_guard lock(mutex);
            received[index] = messages;
            progress.notify_all();
        }
    };
    std::thread r1(reader, std::ref(fast1), 0), r2(reader, std::ref(fast2), 1);
    auto const payload = std::string(size, 'x');
    for (int n = 0; n < messages; ++n) {
        { // keep at most 8 messages ahead of the slower reader
            std::unique_lock lock(mutex);
            REQUIRE(progress.wait_for(lock, 20s, [&] {
                return std::min(received[0], received[1]) >= n - 8;
            }));
        }
        auto text = numbered(n, size);
        (void)srv.get().publish("feed", std::move(text));
    }
    r1.join();
    r2.join();
    CHECK(failures == 0);
    REQUIRE(p.wait_for("close:slow consumer:1008"));
    if (!sanitized) // 64 MiB went out; the stalled client may hold at most its 1 MiB bound
        CHECK(resident_bytes() < memory_before + 32 * 1024 * 1024);
    auto const stats = srv.get().stats();
    CHECK(stats.closes_by_code.at(1008) == 1);
    CHECK(stats.messages_out >= 2 * static_cast<std::uint64_t>(messages));
}

TEST_CASE("keep_latest delivers the newest message to a client that fell behind",
          "[groups][slow]")
{
    constexpr int messages = 400;
    probe p;
    test::log_capture log;
    test::running_server srv(
        test::test_options(log),
        member_routes(p, {.max_send_queue_bytes = 256 * 1024,
                          .slow_consumer = mallard::slow_consumer_policy::keep_latest}));
    mallard::testing::client c{srv.port(), "/g/prices"};
    REQUIRE(p.wait_for("open"));
    for (int n = 0; n < messages; ++n)
        (void)srv.get().publish("prices", numbered(n, 64 * 1024));
    auto const count = read_through_last(c, messages).count;
    CHECK(count < messages); // some were replaced by newer ones...
    CHECK(srv.get().stats().messages_dropped == static_cast<std::uint64_t>(messages - count));
    CHECK(c.is_open()); // ...and the client was not closed for it
}

TEST_CASE("keep_latest with a small socket_send_buffer: a client that stops reading gets the "
          "newest message, not what was published while it read nothing",
          "[groups][slow]")
{
    // A feed: 1,000 messages of 1 KiB, one a millisecond (a feed's pace,
    // not a synchronisation), to a client that reads none until the end.
    // Without the small kernel buffer Linux would take all 1 MiB for it,
    // and the policy would never see it fall behind.
    constexpr int messages = 1000;
    probe p;
    test::log_capture log;
    test::running_server srv(
        test::test_options(log),
        member_routes(p, {.slow_consumer = mallard::slow_consumer_policy::keep_latest,
                          .socket_send_buffer = 4096}));
    mallard::testing::client c{srv.port(), "/g/feed"};
    REQUIRE(p.wait_for("open"));
    for (int n = 0; n < messages; ++n) {
        (void)srv.get().publish("feed", numbered(n, 1024));
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
    auto const count = read_through_last(c, messages).count;
    // What the kernel held (the client's receive buffer, some 128 KiB, and
    // 8 KiB here), then the newest: far from all of them.
    CHECK(count < messages / 2);
    CHECK(srv.get().stats().messages_dropped == static_cast<std::uint64_t>(messages - count));
    CHECK(c.is_open());
}

TEST_CASE("drop_oldest keeps the newest messages within the bound", "[groups][slow]")
{
    constexpr int messages = 400;
    probe p;
    test::log_capture log;
    test::running_server srv(
        test::test_options(log),
        member_routes(p, {.max_send_queue_bytes = 256 * 1024,
                          .slow_consumer = mallard::slow_consumer_policy::drop_oldest}));
    mallard::testing::client c{srv.port(), "/g/ticks"};
    REQUIRE(p.wait_for("open"));
    for (int n = 0; n < messages; ++n)
        (void)srv.get().publish("ticks", numbered(n, 64 * 1024));
    auto const [count, gaps] = read_through_last(c, messages);
    CHECK(count < messages);
    CHECK(gaps >= 1);
    // The tail is whole: the newest messages that fit the bound all arrived.
    CHECK(c.is_open());
}

TEST_CASE("1,000 connect and disconnect cycles leave no members and no memory behind",
          "[groups][churn]")
{
    constexpr int threads_count = 4;
    int const cycles = (sanitized ? 200 : 1000) / threads_count;
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log, 4), member_routes(p));
    auto churn = [&](int rounds) {
        std::vector<std::thread> threads;
        for (int t = 0; t < threads_count; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < rounds; ++i) {
                    mallard::testing::client c{srv.port(), "/g/churn" + std::to_string(t % 2)};
                    if (i % 2)
                        c.close();
                    else
                        c.drop();
                }
            });
        for (auto& t : threads)
            t.join();
    };
    churn(20); // warm up allocator caches before measuring
    REQUIRE(p.wait_for_prefix_count("close:", threads_count * 20));
    auto const memory_before = resident_bytes();
    churn(cycles);
    auto const total = static_cast<std::size_t>(threads_count * (20 + cycles));
    REQUIRE(p.wait_for_prefix_count("close:", total));
    CHECK(srv.get().group_size("churn0") == 0);
    CHECK(srv.get().group_size("churn1") == 0);
    CHECK(srv.get().group_size("everyone") == 0);
    CHECK(srv.get().connection_count() == 0);
    if (!sanitized)
        CHECK(resident_bytes() < memory_before + 8 * 1024 * 1024);
}

TEST_CASE("Plain HTTP beside WebSockets: health, the user's handler, static files", "[http]")
{
    namespace fs = std::filesystem;
    auto const root = fs::temp_directory_path() / ("mallard-static-" + std::to_string(getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "www" / "sub");
    std::ofstream(root / "www" / "index.html") << "<h1>home</h1>";
    std::ofstream(root / "www" / "app.js") << "let x = 1;";
    std::ofstream(root / "www" / "sub" / "data.json") << "{}";
    std::ofstream(root / "secret.txt") << "top secret";
    fs::create_symlink(root / "secret.txt", root / "www" / "leak.txt");

    probe p;
    test::log_capture log;
    auto options = test::test_options(log);
    options.static_directory = (root / "www").string();
    options.http_handler = [](mallard::request const& req)
        -> std::optional<boost::beast::http::response<boost::beast::http::string_body>> {
        if (req.path() != "/api/hello")
            return std::nullopt;
        boost::beast::http::response<boost::beast::http::string_body> res{
            boost::beast::http::status::ok, 11};
        res.body() = "hello from the handler";
        return res;
    };
    test::running_server srv(std::move(options), member_routes(p));

    auto get = [&](std::string const& target, std::string const& method = "GET") {
        test::raw_connection raw(srv.port());
        raw.write(method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return raw.read_until_closed().first;
    };
    SECTION("files with their content types, and a folder's index.html")
    {
        auto index = get("/");
        CHECK(index.starts_with("HTTP/1.1 200"));
        CHECK(index.find("Content-Type: text/html; charset=utf-8") != std::string::npos);
        CHECK(index.ends_with("<h1>home</h1>"));
        CHECK(get("/app.js").find("Content-Type: text/javascript") != std::string::npos);
        CHECK(get("/sub/data.json").find("Content-Type: application/json") != std::string::npos);
        auto head = get("/app.js", "HEAD");
        CHECK(head.starts_with("HTTP/1.1 200"));
        CHECK(head.find("Content-Length: 10") != std::string::npos);
        CHECK(head.ends_with("\r\n\r\n"));
    }
    SECTION("traversal attempts are refused")
    {
        for (auto target : {"/../secret.txt", "/%2e%2e/secret.txt", "/sub/%2E%2E/%2E%2E/secret.txt",
                            "/..%2fsecret.txt", "/sub/..%2F..%2Fsecret.txt", "/leak.txt",
                            "/%00index.html", "/sub/./../../secret.txt"}) {
            auto reply = get(target);
            INFO(target);
            CHECK(reply.starts_with("HTTP/1.1 404"));
            CHECK(reply.find("top secret") == std::string::npos);
        }
    }
    SECTION("missing files, other methods, health and the handler")
    {
        CHECK(get("/nope.html").starts_with("HTTP/1.1 404"));
        auto post = get("/app.js", "POST");
        CHECK(post.starts_with("HTTP/1.1 405"));
        CHECK(post.find("Allow: GET, HEAD") != std::string::npos);
        CHECK(get("/healthz").ends_with("ok\n"));
        CHECK(get("/api/hello").ends_with("hello from the handler"));
    }
    SECTION("a kept-alive connection serves several requests")
    {
        test::raw_connection raw(srv.port());
        raw.write("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
                  "Connection: close\r\n\r\n");
        auto both = raw.read_until_closed().first;
        CHECK(both.find("let x = 1;") != std::string::npos);
        CHECK(both.ends_with("ok\n"));
    }
    fs::remove_all(root);
}

TEST_CASE("Stats count messages, bytes and closes by code", "[stats]")
{
    probe p;
    test::log_capture log;
    test::running_server srv(test::test_options(log), member_routes(p));
    {
        mallard::testing::client c{srv.port(), "/g/s"};
        c.send_text("12345");
        CHECK(c.receive()->data == "12345");
        c.close(mallard::close_code{4000});
    }
    REQUIRE(p.wait_for("close:peer closed:4000"));
    auto const stats = srv.get().stats();
    CHECK(stats.connections_opened == 1);
    CHECK(stats.connections_open == 0);
    CHECK(stats.messages_in == 1);
    CHECK(stats.bytes_in == 5);
    CHECK(stats.messages_out == 1);
    CHECK(stats.bytes_out == 5);
    CHECK(stats.closes_by_code.at(4000) == 1); // 4000-4015 one by one, the rest under 0
    srv.stop();
    CHECK(log.contains("server stopped; open 0, opened 1, in 1 msg/5 B"));
}
