// SPDX-License-Identifier: BSL-1.0
// A chat with rooms: clients join /ws/chat/<room>?name=NICK, see the room's
// last messages, join and leave notices, and every message sent to the room.
// The bundled page (examples/chat/www) is served at / from the same port.
// With --token SECRET, only clients that pass ?token=SECRET may join: others
// get HTTP 401 before the upgrade (the page forwards its own ?token=).
// With --redis redis://HOST:PORT, several processes serve one chat: rooms are
// carried over Redis pub/sub (the history of a room is each process's own).
//
// Protocol, JSON text messages:
//   server -> client  {"type":"history","messages":[{"name","text","time"}...]}
//                     {"type":"join"|"leave","name":..,"members":N}
//                     {"type":"message","name":..,"text":..,"time":..}
//                     {"type":"error","error":..}
//   client -> server  {"type":"message","text":..}

#include <mallard/mallard.hpp>
#include <mallard/redis.hpp>

#include "../common/example_args.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <deque>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace json = boost::json;

namespace {

constexpr std::size_t history_length = 50;
constexpr std::size_t max_name_length = 32;
constexpr std::size_t max_text_length = 2000;

/// Each room's last messages, shared by every thread.
class room_history {
public:
    void add(std::string const& room, json::object message)
    {
        std::lock_guard lock(mutex_);
        auto& messages = rooms_[room];
        messages.push_back(std::move(message));
        if (messages.size() > history_length)
            messages.pop_front();
    }

    json::array get(std::string const& room) const
    {
        std::lock_guard lock(mutex_);
        json::array out;
        if (auto found = rooms_.find(room); found != rooms_.end())
            for (auto const& m : found->second)
                out.push_back(m);
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::deque<json::object>> rooms_;
};

/// Whether `text` is well-formed UTF-8 (a name from the URL may be any bytes).
bool valid_utf8(std::string_view text)
{
    for (std::size_t i = 0; i < text.size();) {
        auto const lead = static_cast<unsigned char>(text[i]);
        std::size_t const length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3
                                                   : (lead >> 3) == 0x1E ? 4 : 0;
        if (length == 0 || i + length > text.size())
            return false;
        std::uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
        for (std::size_t k = 1; k < length; ++k) {
            auto const next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80)
                return false;
            code = (code << 6) | (next & 0x3F);
        }
        constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return false; // overlong, out of range, or a surrogate
        i += length;
    }
    return true;
}

/// Cuts `text` to at most `limit` bytes without splitting a character.
void truncate_utf8(std::string& text, std::size_t limit)
{
    if (text.size() <= limit)
        return;
    while (limit > 0 && (static_cast<unsigned char>(text[limit]) & 0xC0) == 0x80)
        --limit;
    text.resize(limit);
}

std::string utc_now()
{
    auto const now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm parts{};
    gmtime_r(&now, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

class chat_view : public mallard::websocket_view {
public:
    chat_view(room_history& history, std::string const& token) : history_(history), token_(token)
    {
    }

    mallard::task<mallard::upgrade_decision> on_upgrade() override
    {
        if (!token_.empty() && request().query_param("token") != token_)
            co_return mallard::upgrade_decision::reject(mallard::http::status::unauthorized,
                                                        "Wrong or missing token\n");
        co_return mallard::upgrade_decision::accept();
    }

    mallard::task<> on_open() override
    {
        room_ = request().path_param("room");
        name_ = request().query_param("name").value_or("");
        if (name_.empty() || !valid_utf8(name_))
            name_ = "anonymous";
        truncate_utf8(name_, max_name_length);
        group_ = "room:" + room_;

        join(group_);
        co_await send_text(history_message());
        announce("join");
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        auto message = chat_message(data, op);
        if (!message) {
            co_await send_text(R"({"type":"error","error":"expected {\"type\":\"message\",\"text\":\"...\"}"})");
            co_return;
        }
        history_.add(room_, *message);
        publish(group_, json::serialize(*message));
    }

    mallard::task<> on_close(mallard::close_reason) override
    {
        leave(group_);
        announce("leave");
        co_return;
    }

private:
    // JSON is built outside the coroutines: g++ 12 miscompiles braced
    // initializer lists inside a coroutine ("array used as initializer").
    std::string history_message() const
    {
        return json::serialize(
            json::object{{"type", "history"}, {"messages", history_.get(room_)}});
    }

    /// The room message for a client's `{"type":"message","text":...}`, if it is one.
    std::optional<json::object> chat_message(std::string_view data, mallard::opcode op) const
    {
        if (op != mallard::opcode::text)
            return std::nullopt;
        boost::system::error_code ec;
        auto parsed = json::parse(data, ec);
        auto const* object = parsed.if_object();
        auto const* type = object ? object->if_contains("type") : nullptr;
        auto const* text = object ? object->if_contains("text") : nullptr;
        if (ec || !type || *type != "message" || !text || !text->is_string() ||
            text->get_string().empty())
            return std::nullopt;
        std::string body(text->get_string());
        truncate_utf8(body, max_text_length);
        return json::object{{"type", "message"}, {"name", name_}, {"text", body}, {"time", utc_now()}};
    }

    void announce(char const* what)
    {
        publish(group_, json::serialize(json::object{
                            {"type", what},
                            {"name", name_},
                            {"members", group_size(group_)},
                        }));
    }

    room_history& history_;
    std::string const& token_; // empty: no check
    std::string room_, name_, group_;
};

} // namespace

int main(int argc, char** argv)
{
    auto args = examples::parse_args(argc, argv, "mallard_chat", {},
                                     {"--www", "--token", "--redis"});
    if (!args)
        return 2;
    args->options.static_directory = args->value("--www", MALLARD_CHAT_WWW);
    auto const token = args->value("--token", "");
    try {
        if (auto const redis = args->value("--redis", ""); !redis.empty())
            args->options.backplane = mallard::make_redis_backplane(redis);
        room_history history;
        mallard::router urls{mallard::path(
            "/ws/chat/<room>",
            [&history, &token] { return std::make_unique<chat_view>(history, token); }, "chat")};
        mallard::server srv{args->options, std::move(urls)};
        examples::announce(srv, *args);
        std::cout << "open " << (args->options.tls ? "https" : "http") << "://127.0.0.1:"
                  << srv.port() << "/" << (token.empty() ? "" : "?token=" + token)
                  << " in a browser" << std::endl;
        srv.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_chat: " << e.what() << '\n';
        return 1;
    }
}
