// SPDX-License-Identifier: MIT
// The public header as a C++ program sees it: <v4v/v4v.h> must compile
// under g++ -std=c++17 -Wall -Wextra -Werror, its calls have C linkage,
// and the ABI structures keep their sizes.
#include <v4v/v4v.h>

#include <cerrno>
#include <cstdio>

static_assert(sizeof(struct v4v_addr) == 8, "v4v_addr is Argo's 8 bytes");

int main()
{
	struct v4v_domain *d = nullptr;
	int (*open_fn)(struct v4v_domain **) = v4v_open;
	const char *(*why)(int) = v4v_strerror;
	if (open_fn(&d) == 0) {
		std::printf("domain %u\n", static_cast<unsigned>(v4v_domid(d)));
		v4v_close(d);
	}
	std::printf("%s\n", why(-ECONNREFUSED));
	return v4v_name_valid("ok") ? 0 : 1;
}
