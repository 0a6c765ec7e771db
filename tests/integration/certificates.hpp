// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_TESTS_INTEGRATION_CERTIFICATES_HPP
#define MALLARD_TESTS_INTEGRATION_CERTIFICATES_HPP

// Certificates made for a test by the openssl command.

#include <stdlib.h> // mkdtemp

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace test {

/// A self-signed certificate for 127.0.0.1 and its key, plus an unrelated
/// key, made with the openssl command in a folder removed afterwards.
class test_certificates {
public:
    test_certificates()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "mallard-tls-XXXXXX");
        if (!mkdtemp(pattern.data()))
            throw std::runtime_error("cannot make a temporary folder");
        dir_ = pattern;
        auto make = [&](std::string const& key, std::string const& cert) {
            auto const command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                                 "-nodes -days 2 -subj /CN=127.0.0.1 -addext "
                                 "subjectAltName=IP:127.0.0.1 -keyout " +
                                 path(key) + " -out " + path(cert) + " 2>/dev/null";
            if (std::system(command.c_str()) != 0)
                throw std::runtime_error("the openssl command failed: " + command);
        };
        make("key.pem", "cert.pem");
        make("other_key.pem", "other_cert.pem");
    }
    test_certificates(test_certificates const&) = delete;
    ~test_certificates()
    {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    std::string path(std::string const& name) const { return (dir_ / name).string(); }

    std::string read(std::string const& name) const
    {
        std::ifstream in(path(name));
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }

private:
    std::filesystem::path dir_;
};

} // namespace test

#endif
