// SPDX-License-Identifier: MIT
// Password file: hash lines round-trip through the parser and verify; wrong passwords,
// unknown users and malformed lines are refused with the line named; the tachyon_passwd
// tool adds, updates and deletes users in place.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "eng_passwd.h"

namespace {

const uint8_t *u8(const char *s)
{
	return reinterpret_cast<const uint8_t *>(s);
}

std::string hash_line(const char *user, const char *pass, unsigned iter = 1000)
{
	char line[512];
	EXPECT_EQ(eng_passwd_hash_line(user, u8(pass), strlen(pass), iter, line, sizeof(line)), 0);
	return line;
}

bool check(const eng_passwd *pw, const char *user, const char *pass)
{
	return eng_passwd_check(pw, u8(user), strlen(user), u8(pass), strlen(pass));
}

} // namespace

TEST(EngPasswd, HashVerifies)
{
	std::string text = "# comment\n\n" + hash_line("alice", "s3cret") + "\n" +
			   hash_line("bob", "") + "\r\n" + hash_line("carol", "pässwörd");
	char err[256] = "";
	eng_passwd *pw = eng_passwd_parse(text.data(), text.size(), "pw", err, sizeof(err));
	ASSERT_NE(pw, nullptr) << err;
	EXPECT_EQ(eng_passwd_count(pw), 3u);
	EXPECT_TRUE(check(pw, "alice", "s3cret"));
	EXPECT_FALSE(check(pw, "alice", "s3cre"));
	EXPECT_FALSE(check(pw, "alice", "s3cret "));
	EXPECT_TRUE(check(pw, "bob", ""));
	EXPECT_TRUE(check(pw, "carol", "pässwörd"));
	EXPECT_FALSE(check(pw, "dave", "s3cret"));
	EXPECT_FALSE(check(pw, "alic", "s3cret"));
	eng_passwd_free(pw);
}

TEST(EngPasswd, SaltsDiffer)
{
	EXPECT_NE(hash_line("a", "x"), hash_line("a", "x"));
}

TEST(EngPasswd, BadLinesNameTheLine)
{
	struct {
		std::string text;
		const char *want;
	} cases[] = {
		{"alice\n", "pw:1: expected user:hash"},
		{"\n:$pbkdf2-sha512$1$AAAA$AAAA\n", "pw:2: expected user:hash"},
		{"alice:$7$101$x$y\n", "pw:1: unknown hash format"},
		{"alice:$pbkdf2-sha512$0$AAAA$AAAA\n", "pw:1: bad iteration count"},
		{"alice:$pbkdf2-sha512$99999999999$AAAA$AAAA\n", "pw:1: bad iteration count"},
		{"alice:$pbkdf2-sha512$1000$AAAA\n", "pw:1: missing key"},
		{"alice:$pbkdf2-sha512$1000$AAAA$AAAA\n", "pw:1: bad salt"},
		{hash_line("a", "b") + "\n" + hash_line("a", "c") + "\n", "user 'a' appears more"},
	};
	for (auto &tc : cases) {
		char err[256] = "";
		eng_passwd *pw = eng_passwd_parse(tc.text.data(), tc.text.size(), "pw", err,
						  sizeof(err));
		EXPECT_EQ(pw, nullptr) << tc.text;
		EXPECT_NE(std::string(err).find(tc.want), std::string::npos) << err;
		eng_passwd_free(pw);
	}
	// A key of the wrong length is refused too.
	std::string line = hash_line("a", "b");
	line.erase(line.size() - 4);
	char err[256] = "";
	EXPECT_EQ(eng_passwd_parse(line.data(), line.size(), "pw", err, sizeof(err)), nullptr);
	EXPECT_NE(std::string(err).find("bad key"), std::string::npos) << err;
}

TEST(EngPasswd, UnstorableUserNames)
{
	char line[512];
	for (const char *u : {"", "a:b", "a\nb"})
		EXPECT_EQ(eng_passwd_hash_line(u, u8("p"), 1, 1000, line, sizeof(line)), -EINVAL);
	EXPECT_EQ(eng_passwd_hash_line("a", u8("p"), 1, 1000, line, 20), -ENOSPC);
}

TEST(EngPasswd, ToolAddsUpdatesDeletes)
{
	const char *tool = getenv("TACHYON_PASSWD_TOOL");
	if (!tool)
		GTEST_SKIP() << "TACHYON_PASSWD_TOOL not set (run through meson test)";
	char dir[] = "/tmp/tachyon-pw-XXXXXX";
	ASSERT_NE(mkdtemp(dir), nullptr);
	std::string file = std::string(dir) + "/pw";
	auto run = [&](const std::string &args, const char *stdin_text = nullptr) {
		std::string cmd = std::string(tool) + " " + args;
		if (stdin_text)
			cmd = "printf '" + std::string(stdin_text) + "' | " + cmd;
		return system(cmd.c_str());
	};
	auto load = [&] {
		char err[256] = "";
		eng_passwd *pw = eng_passwd_load(file.c_str(), err, sizeof(err));
		EXPECT_NE(pw, nullptr) << err;
		return pw;
	};
	ASSERT_EQ(run("-c -b " + file + " alice one"), 0);
	ASSERT_EQ(run(file + " bob", "two\\n"), 0);
	eng_passwd *pw = load();
	EXPECT_EQ(eng_passwd_count(pw), 2u);
	EXPECT_TRUE(check(pw, "alice", "one"));
	EXPECT_TRUE(check(pw, "bob", "two"));
	eng_passwd_free(pw);

	ASSERT_EQ(run("-b " + file + " alice uno"), 0); // update keeps bob
	pw = load();
	EXPECT_EQ(eng_passwd_count(pw), 2u);
	EXPECT_TRUE(check(pw, "alice", "uno"));
	EXPECT_FALSE(check(pw, "alice", "one"));
	EXPECT_TRUE(check(pw, "bob", "two"));
	eng_passwd_free(pw);

	ASSERT_EQ(run("-D " + file + " bob"), 0);
	EXPECT_NE(run("-D " + file + " bob 2>/dev/null"), 0); // gone already
	EXPECT_NE(run("-b " + file + " a:b x 2>/dev/null"), 0);
	EXPECT_NE(run("-b 2>/dev/null"), 0);
	pw = load();
	EXPECT_EQ(eng_passwd_count(pw), 1u);
	EXPECT_FALSE(check(pw, "bob", "two"));
	eng_passwd_free(pw);
	unlink(file.c_str());
	rmdir(dir);
}
