// What the CLI tests share: a temporary directory for rule and flow files, a command run with its two
// streams captured, and a daemon that answers from a script and remembers what it was asked.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace portcullis::cli::test {

// A fresh directory under the system's temporary directory, removed with everything in it.
class temp_dir {
public:
	temp_dir()
	{
		std::string pattern = (std::filesystem::temp_directory_path() / "portcullis-cli-XXXXXX").string();
		if (!::mkdtemp(pattern.data()))
			throw std::runtime_error("mkdtemp failed");
		path_ = pattern;
	}
	~temp_dir()
	{
		std::error_code ec;
		std::filesystem::remove_all(path_, ec);
	}
	temp_dir(const temp_dir&) = delete;
	temp_dir& operator=(const temp_dir&) = delete;

	// Writes text to name in the directory and returns its full path.
	std::string write(const std::string& name, const std::string& text) const
	{
		const auto p = path_ / name;
		std::ofstream(p, std::ios::binary) << text;
		return p.string();
	}
	const std::filesystem::path& path() const { return path_; }

private:
	std::filesystem::path path_;
};

// What a command printed and returned.
struct run_result {
	int status = -1;
	std::string out;
	std::string err;
};

// Runs one command with string streams in place of stdout and stderr.
template <typename Command>
run_result capture(Command&& command)
{
	std::ostringstream out, err;
	run_result r;
	r.status = command(streams{out, err});
	r.out = out.str();
	r.err = err.str();
	return r;
}

// A daemon with one scripted answer: replies with it to every request and keeps the requests.
struct canned_daemon {
	control::client_result answer;
	std::vector<nlohmann::json> requests;

	// The daemon answered: response is the whole answer line, "ok" included.
	static canned_daemon answering(nlohmann::json response)
	{
		canned_daemon d;
		d.answer.status = control::client_status::ok;
		d.answer.response = std::move(response);
		return d;
	}
	// The client failed before an answer (unreachable, permission_denied, protocol_error).
	static canned_daemon failing(control::client_status status, std::string error)
	{
		canned_daemon d;
		d.answer.status = status;
		d.answer.error = std::move(error);
		return d;
	}
	daemon_call call()
	{
		return [this](const nlohmann::json& req) {
			requests.push_back(req);
			return answer;
		};
	}
};

// The lines of a text, without their newlines.
inline std::vector<std::string> lines_of(const std::string& text)
{
	std::vector<std::string> lines;
	std::istringstream in(text);
	for (std::string line; std::getline(in, line);)
		lines.push_back(line);
	return lines;
}

} // namespace portcullis::cli::test
