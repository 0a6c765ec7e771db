// SPDX-License-Identifier: BSL-1.0
// One client connection as the fuzzer makes it: write bytes, half-close,
// read until the server closes. Plain POSIX sockets rather than Asio, so the
// client side adds no coverage of its own and cannot be confused with the
// server's code in libFuzzer's feedback.

#ifndef MALLARD_TESTS_FUZZ_RAW_EXCHANGE_HPP
#define MALLARD_TESTS_FUZZ_RAW_EXCHANGE_HPP

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fuzz {

/// How an exchange ended.
enum class exchange_end {
    server_closed, ///< the server ended the connection (FIN or reset): the normal end
    deadline,      ///< the server kept it open past the deadline; we cut it
};

/** Connects to 127.0.0.1:`port`, writes `head` then `body`, half-closes
    (FIN), and reads and discards whatever the server sends until it closes
    the connection or `deadline` passes.

    Writing and reading are interleaved (non-blocking socket and poll), so a
    server echoing a large input back cannot deadlock against us while we are
    still writing. A write the server refuses (it closed already) ends the
    writing, not the exchange: what it sends before closing is still read.
*/
inline exchange_end exchange(unsigned short port, std::string_view head, std::string_view body,
                             std::chrono::milliseconds deadline)
{
    int const fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        std::perror("session_fuzzer: socket");
        std::abort(); // out of descriptors: the harness is broken, not the server
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Blocking connect: on loopback the kernel completes it without the
    // server's help, so it returns at once unless the listen backlog is full.
    if (::connect(fd, reinterpret_cast<sockaddr const*>(&address), sizeof address) != 0) {
        std::perror("session_fuzzer: connect");
        std::abort(); // the listener is gone: a finding, caught here
    }
    int const one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

    std::string_view pending[] = {head, body};
    std::size_t part = 0;
    auto const skip_empty = [&] {
        while (part < 2 && pending[part].empty())
            ++part;
    };
    skip_empty();
    bool writing = true;
    auto const finish_writing = [&] {
        ::shutdown(fd, SHUT_WR);
        writing = false;
    };
    if (part == 2)
        finish_writing();

    auto const until = std::chrono::steady_clock::now() + deadline;
    auto end = exchange_end::deadline;
    char sink[16384];
    for (;;) {
        auto const left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
        int const ready = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t const n = ::recv(fd, sink, sizeof sink, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                end = exchange_end::server_closed;
                break;
            }
        }
        if (writing && (p.revents & POLLOUT)) {
            auto& bytes = pending[part];
            ssize_t const n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n > 0) {
                bytes.remove_prefix(static_cast<std::size_t>(n));
                skip_empty();
                if (part == 2)
                    finish_writing();
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                writing = false; // the server is gone or going; read what it said
            }
        }
    }
    ::close(fd);
    return end;
}

} // namespace fuzz

#endif
