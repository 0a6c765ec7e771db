// SPDX-License-Identifier: BSL-1.0
// A chat with rooms: clients join /ws/chat/<room>?name=NICK, see the room's
// last messages, who is in the room, join and leave notices, and every
// message sent to the room. The bundled page (examples/chat/www) is served at
// / from the same port.
// A client that comes back passes the last offset it saw and the history's
// epoch (?since=OFFSET&epoch=EPOCH) and gets exactly the messages it missed,
// when the room still has them ("recovered": true).
// With --token SECRET, only clients that pass ?token=SECRET may join: others
// get HTTP 401 before the upgrade (the page forwards its own ?token=).
// With --redis redis://HOST:PORT, several processes serve one chat: rooms and
// their presence are carried over Redis pub/sub, and each room's history is a
// Redis stream, numbered by Redis, so a client recovers on any process.
//
// Protocol, JSON text messages:
//   server -> client  {"type":"history","messages":[{"type":"message","name","text","time",
//                       "offset"}...],"epoch":..,"recovered":true|false}
//                     {"type":"join"|"leave","name":..,"members":N}
//                     {"type":"presence","members":[name...]}
//                     {"type":"message","name":..,"text":..,"time":..,"offset":N}
//                     {"type":"error","error":..}
//   client -> server  {"type":"message","text":..}

#include <mallard/json.hpp>
#include <mallard/mallard.hpp>
#include <mallard/redis.hpp>

#include "../common/example_args.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace json = boost::json;

namespace {

constexpr std::size_t history_length = 50;
constexpr std::size_t max_name_length = 32;
constexpr std::size_t max_text_length = 2000;

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

/// A room message as its clients receive it: the published JSON object with
/// its offset added, the number a client passes back as ?since=.
std::string with_offset(std::string_view object, std::uint64_t offset)
{
    std::string text(object.substr(0, object.size() - 1)); // without its closing '}'
    text += ",\"offset\":";
    text += std::to_string(offset);
    text += '}';
    return text;
}

/// A join or leave notice, then the member list: the room's presence messages.
std::vector<std::string> presence_messages(mallard::presence_change const& change)
{
    json::array names;
    for (auto const& member : change.members)
        names.emplace_back(member.info);
    auto const what = change.what == mallard::presence_change::kind::joined ? "join" : "leave";
    return {json::serialize(json::object{{"type", what},
                                         {"name", change.member.info},
                                         {"members", change.members.size()}}),
            json::serialize(json::object{{"type", "presence"}, {"members", std::move(names)}})};
}

/// Every room: its last messages with offsets, and who is in it.
mallard::group_policy room_policy()
{
    mallard::group_policy rooms;
    rooms.pattern = "room:*";
    rooms.history_size = history_length;
    rooms.format = [](std::string_view, mallard::history_entry const& entry) {
        return with_offset(*entry.payload, entry.offset);
    };
    rooms.presence = true;
    rooms.presence_messages = presence_messages;
    return rooms;
}

/// Where a client says it stands: ?since=OFFSET&epoch=EPOCH (none: since{}).
mallard::since client_position(mallard::request const& request)
{
    mallard::since from;
    auto const offset = request.query_param("since");
    auto const epoch = request.query_param("epoch");
    if (!offset || !epoch)
        return from;
    auto const [end, error] = std::from_chars(offset->data(), offset->data() + offset->size(),
                                              from.offset);
    if (error != std::errc{} || end != offset->data() + offset->size())
        return {};
    from.epoch = *epoch;
    return from;
}

class chat_view : public mallard::websocket_view {
public:
    explicit chat_view(std::string const& token) : token_(token) {}

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

        // The history reply goes out before anything else can: the room's
        // later messages, and the notice of this join, reach this client
        // after it.
        auto const joined = co_await join(group_, client_position(request()), name_);
        co_await send_text(history_message(joined));
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        auto message = chat_message(data, op);
        if (!message) {
            co_await send_text(R"({"type":"error","error":"expected {\"type\":\"message\",\"text\":\"...\"}"})");
            co_return;
        }
        mallard::publish_json(*this, group_, *message);
    }

    mallard::task<> on_close(mallard::close_reason) override
    {
        leave(group_);
        co_return;
    }

private:
    // JSON is built outside the coroutines: g++ 12 miscompiles braced
    // initializer lists inside a coroutine ("array used as initializer").
    static std::string history_message(mallard::join_result const& joined)
    {
        std::string text = json::serialize(json::object{{"type", "history"},
                                                        {"epoch", joined.position.epoch},
                                                        {"recovered", joined.recovered}});
        text.pop_back(); // the closing '}': the messages go in as they went out
        text += ",\"messages\":[";
        for (auto const& entry : joined.messages) {
            if (text.back() != '[')
                text += ',';
            text += with_offset(*entry.payload, entry.offset);
        }
        text += "]}";
        return text;
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
        args->options.groups.push_back(room_policy());
        mallard::router urls{mallard::path(
            "/ws/chat/<room>", [&token] { return std::make_unique<chat_view>(token); }, "chat")};
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
