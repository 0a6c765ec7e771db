// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_BACKPLANE_HPP
#define MALLARD_BACKPLANE_HPP

#include <mallard/logger.hpp>
#include <mallard/opcode.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace mallard {

/// One publish to a group, as it travels between servers.
struct group_message {
    /// The group's name.
    std::string group;
    /// The payload, built once and shared by every recipient.
    std::shared_ptr<std::string const> payload;
    /// `opcode::text` or `opcode::binary`.
    mallard::opcode op = mallard::opcode::text;
    /// A connection of the publishing server not to deliver to (the sender
    /// itself, when it asked to be excluded); 0 for none.
    std::uint64_t excluded_connection = 0;
};

/** Carries group publishes to the servers whose clients are members.

    Every `publish` goes through the server's backplane, which hands each
    message to `deliver` on every server that should see it, its own
    included. The default, `in_process_backplane`, just calls `deliver`:
    one process is one chat. Another implementation (e.g. over Redis pub/sub)
    lets several processes behind a load balancer form one chat, without any
    change to views.

    @par Thread safety
    `publish`, `subscribe` and `unsubscribe` are called from any server
    thread, concurrently, and must never block. `deliver` may be called from
    any thread.
*/
class backplane {
public:
    /// Hands a message to this server's local members of its group.
    using deliver_function = std::function<void(group_message const&)>;

    /// What the server lends its backplane.
    struct host {
        /// Hands a message to this server's members of its group.
        deliver_function deliver;
        /// One of the server's event loops, for the backplane's own I/O: a
        /// single thread runs it. Its work keeps the server running until
        /// `stop()`.
        boost::asio::any_io_executor executor;
        /// The server's logger.
        mallard::logger log;
    };

    virtual ~backplane() = default;

    /// Called once by the server when it is made, before it runs.
    virtual void start(host server) = 0;

    /// Sends `message` to every server with members of its group.
    virtual void publish(group_message message) = 0;

    /// This server has its first local member of `group`.
    virtual void subscribe(std::string const& group) { (void)group; }

    /// This server's last local member of `group` has left.
    virtual void unsubscribe(std::string const& group) { (void)group; }

    /// Called once, when every connection of the server has ended (or the
    /// server is destroyed without having run): end all I/O on `executor`.
    virtual void stop() {}

    /// Publishes that could not be carried to other servers (they still
    /// reached this server's members); reported in `server_stats`.
    virtual std::uint64_t dropped() const noexcept { return 0; }

    /// Whether the links to the other servers are up now; exported as
    /// `mallard_backplane_up`. Any thread. Default: true (nothing to link).
    virtual bool connected() const noexcept { return true; }

    /// Publishes handed on towards the other servers; any thread.
    virtual std::uint64_t published() const noexcept { return 0; }

    /// Times a link to the other servers came up after a failure (lost, or
    /// not reached); any thread.
    virtual std::uint64_t reconnects() const noexcept { return 0; }
};

/// The default backplane: publishes reach this process's members only.
class in_process_backplane final : public backplane {
public:
    void start(host server) override { deliver_ = std::move(server.deliver); }
    void publish(group_message message) override { deliver_(message); }

private:
    deliver_function deliver_;
};

} // namespace mallard

#endif
