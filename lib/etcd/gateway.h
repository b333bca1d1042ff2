// Internals of the etcd client: HTTP/1.1 exchanges with etcd's JSON gateway, and the gateway's encodings
// (keys and values in base64, int64 fields as JSON strings). Private to lib/etcd.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "etcd/etcd.h"

namespace portcullis::etcd::detail {

using clock = std::chrono::steady_clock;

// One JSON message: a value in base64 (4/3 of it) plus the envelope.
inline constexpr size_t max_message_bytes = max_value_bytes / 3 * 4 + (64u << 10);

std::string base64_encode(std::string_view in);
bool base64_decode(std::string_view in, std::string& out);
// etcd's gateway writes int64 fields as JSON strings ("revision":"12"); accept numbers too.
int64_t int_field(const nlohmann::json& j, const char* name);

// One HTTP/1.1 exchange with the gateway: a POST, then its response read either whole (unary calls)
// or message by message (a watch streams newline-separated JSON objects in chunked encoding).
class exchange {
public:
	exchange(const std::atomic<bool>* stop) : stop_(stop) {}
	~exchange();
	exchange(const exchange&) = delete;
	exchange& operator=(const exchange&) = delete;

	bool open(const location& where, clock::time_point deadline, std::string& error);
	bool post(const char* path, const std::string& body, clock::time_point deadline, std::string& error);
	// The whole body of a unary response.
	bool read_body(std::string& body, clock::time_point deadline, std::string& error);
	// The next newline-terminated message of a streamed body. Without a deadline it waits until the
	// stop flag is set or the connection ends.
	bool next_message(std::string& message, clock::time_point deadline, std::string& error);

	int status() const { return status_; }

private:
	bool wait_connected(int fd, clock::time_point deadline, std::string& error);
	bool wait(short events, clock::time_point deadline, std::string& error);
	bool fill(clock::time_point deadline, std::string& error);
	bool read_head(clock::time_point deadline, std::string& error);
	// Moves body bytes from raw_ to out, undoing chunked encoding; sets ended_ at the body's end.
	void decode(std::string& out);

	const std::atomic<bool>* stop_;
	int fd_ = -1;
	std::string host_;
	std::string raw_;     // bytes received and not yet decoded
	std::string stream_;  // decoded body bytes not yet returned as messages
	int status_ = 0;
	bool chunked_ = false;
	int64_t length_ = -1;
	size_t taken_ = 0;
	size_t chunk_left_ = 0;
	bool after_chunk_ = false;
	bool ended_ = false;
	bool eof_ = false;
};

// A unary call: POST body to path, parse the JSON answer.
bool call(const location& where, const char* path, const nlohmann::json& request, nlohmann::json& response,
          std::string& error, std::chrono::milliseconds timeout);

} // namespace portcullis::etcd::detail
