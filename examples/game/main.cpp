// SPDX-License-Identifier: BSL-1.0
// A multiplayer game, server-authoritative: players in a room move dots on
// an arena with the arrow keys. Clients send only which keys they hold; each
// room's game loop, a task the server owns (server::spawn), moves everyone
// --tick-hz times a second (default 30) and sends the whole room a binary
// snapshot of every position. The bundled page (examples/game/www, served
// at /) draws them.
//
// Protocol, on /ws/game/<room>?name=NAME (name optional, at most 24 bytes):
//   client -> server  binary, 1 byte: the keys held, bits up 1, down 2,
//                     left 4, right 8; sent when they change. A text message
//                     closes with 1003, any other binary one with 1007.
//   server -> client  binary snapshot every tick (see arena.hpp):
//                       uint8 1, uint32 tick, uint16 count,
//                       count x (uint32 id, uint16 x, uint16 y), little-endian
//                     text, JSON:
//                       {"type":"welcome","id":N,"room":R,"width":W,"height":H,
//                        "tick_hz":T,"players":[{"id":N,"name":S},...]}  first, to the joiner
//                       {"type":"join","id":N,"name":S}   to the room, someone came
//                       {"type":"leave","id":N}           to the room, someone left
// A room's loop starts with its first player and ends with its last. A
// player that falls behind gets the newest snapshot (keep_latest): the
// snapshots it missed, and any join or leave notice queued among them, are
// replaced by it. The snapshots alone say who is where; a name not heard
// of is shown as "player N".

#include "arena.hpp"

#include <mallard/mallard.hpp>

#include "../common/example_args.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace json = boost::json;

namespace {

/// One room: its arena and its players' names, shared by the room's
/// connections (on any of the server's threads) and its game loop.
struct room {
    explicit room(std::string room_name) : name(std::move(room_name)), group("game:" + name) {}

    std::string const name;
    std::string const group; // every player's connection is a member
    std::mutex mutex;
    game::arena arena;                             // under mutex
    std::map<std::uint32_t, std::string> names;    // under mutex
    std::uint32_t tick = 0;                        // the loop's own
};

/// The rooms with players; a room is made by its first player and goes with
/// its last, when its loop next looks.
class rooms {
public:
    struct entry {
        std::shared_ptr<room> joined;
        bool created = false; // the caller starts its loop
    };

    entry enter(std::string const& name, std::uint32_t id, std::string player_name)
    {
        std::lock_guard lock(mutex_);
        auto& slot = rooms_[name];
        bool const created = !slot;
        if (created)
            slot = std::make_shared<room>(name);
        std::lock_guard room_lock(slot->mutex);
        slot->arena.add(id);
        slot->names[id] = std::move(player_name);
        return {slot, created};
    }

    void leave(room& r, std::uint32_t id)
    {
        std::lock_guard lock(r.mutex);
        r.arena.remove(id);
        r.names.erase(id);
    }

    /// Forgets `r` if it has no player, so that the next to enter makes a
    /// new room (and loop); whether it did.
    bool close_if_empty(std::shared_ptr<room> const& r)
    {
        std::lock_guard lock(mutex_);
        std::lock_guard room_lock(r->mutex);
        if (!r->arena.empty())
            return false;
        if (auto found = rooms_.find(r->name); found != rooms_.end() && found->second == r)
            rooms_.erase(found);
        return true;
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<room>> rooms_;
};

/// A room's game loop: a step and a snapshot every `period`, on the tick
/// (a late wake-up does not shift the ticks after it), until the room is empty.
mallard::task<> run_room(mallard::server& srv, rooms& all, std::shared_ptr<room> r,
                         std::chrono::microseconds period)
{
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    double const seconds = std::chrono::duration<double>(period).count();
    auto next = std::chrono::steady_clock::now();
    for (;;) {
        next += period;
        auto const now = std::chrono::steady_clock::now();
        if (now > next + 4 * period) // stopped for a while (a debugger, a suspended VM): no burst
            next = now;
        timer.expires_at(next);
        co_await timer.async_wait(boost::asio::use_awaitable);
        std::string snapshot;
        {
            std::lock_guard lock(r->mutex);
            if (!r->arena.empty()) {
                r->arena.step(seconds);
                snapshot = r->arena.snapshot(++r->tick);
            }
        }
        if (!snapshot.empty())
            srv.publish(r->group, std::move(snapshot), mallard::opcode::binary);
        else if (all.close_if_empty(r)) // (someone may have come in since)
            co_return;
    }
}

std::string welcome_message(room& r, std::uint32_t id, unsigned tick_hz)
{
    json::array players;
    {
        std::lock_guard lock(r.mutex);
        for (auto const& [player_id, name] : r.names)
            players.push_back(json::object{{"id", player_id}, {"name", name}});
    }
    return json::serialize(json::object{{"type", "welcome"},
                                        {"id", id},
                                        {"room", r.name},
                                        {"width", game::arena_width},
                                        {"height", game::arena_height},
                                        {"tick_hz", tick_hz},
                                        {"players", std::move(players)}});
}

std::string join_message(std::uint32_t id, std::string const& name)
{
    return json::serialize(json::object{{"type", "join"}, {"id", id}, {"name", name}});
}

std::string leave_message(std::uint32_t id)
{
    return json::serialize(json::object{{"type", "leave"}, {"id", id}});
}

/// What the views share: the rooms, the server (to start a room's loop),
/// the tick rate.
struct game_service {
    rooms all;
    mallard::server* server = nullptr; // set once the server is made, before it runs
    unsigned tick_hz = 30;
    std::atomic<std::uint32_t> next_id{1};
};

class player_view : public mallard::websocket_view {
public:
    static constexpr std::size_t max_frame_size = 64; // inputs are one byte
    // A snapshot is the whole state: a player behind gets the newest one.
    static constexpr auto slow_consumer = mallard::slow_consumer_policy::keep_latest;
    static constexpr std::size_t socket_send_buffer = 32 * 1024;
    // The view's own send (the welcome) waits until it is written, so that
    // no snapshot can replace it before it leaves.
    static constexpr std::size_t send_queue_high_water = 1;

    explicit player_view(game_service& service) : service_(service) {}

    mallard::task<> on_open() override
    {
        id_ = service_.next_id++;
        auto name = request().query_param("name").value_or("");
        if (name.empty() || name.size() > 24)
            name = "player " + std::to_string(id_);
        auto entered = service_.all.enter(request().path_param("room"), id_, name);
        room_ = entered.joined;
        if (entered.created)
            service_.server->spawn(run_room(*service_.server, service_.all, room_,
                                            std::chrono::microseconds{1'000'000 / service_.tick_hz}));
        auto welcome = welcome_message(*room_, id_, service_.tick_hz);
        co_await send_text(std::move(welcome)); // before the first snapshot
        publish(room_->group, join_message(id_, name));
        join(room_->group);
    }

    mallard::task<> on_receive(std::string_view data, mallard::opcode op) override
    {
        auto const input = op == mallard::opcode::binary ? game::parse_input(data) : std::nullopt;
        if (op != mallard::opcode::binary) {
            close(mallard::close_code::unsupported_data, "inputs are binary");
        } else if (!input) {
            close(mallard::close_code::invalid_payload, "an input is one byte of key bits");
        } else {
            std::lock_guard lock(room_->mutex);
            room_->arena.set_input(id_, *input);
        }
        co_return;
    }

    mallard::task<> on_close(mallard::close_reason) override
    {
        if (room_) {
            service_.all.leave(*room_, id_);
            publish(room_->group, leave_message(id_));
        }
        co_return;
    }

private:
    game_service& service_;
    std::shared_ptr<room> room_;
    std::uint32_t id_ = 0;
};

} // namespace

int main(int argc, char** argv)
{
    auto args = examples::parse_args(argc, argv, "mallard_game", {}, {"--www", "--tick-hz"});
    if (!args)
        return 2;
    game_service service;
    if (!examples::parse_number(args->value("--tick-hz", "30"), service.tick_hz) ||
        service.tick_hz == 0 || service.tick_hz > 1000) {
        std::cerr << "mallard_game: --tick-hz takes a number from 1 to 1000\n";
        return 2;
    }
    args->options.static_directory = args->value("--www", MALLARD_GAME_WWW);
    try {
        mallard::router urls{mallard::path("/ws/game/<room>",
                                           [&service] { return std::make_unique<player_view>(service); },
                                           "game")};
        mallard::server srv{args->options, std::move(urls)};
        service.server = &srv;
        examples::announce(srv, *args);
        srv.run();
    } catch (std::exception const& e) {
        std::cerr << "mallard_game: " << e.what() << '\n';
        return 1;
    }
}
