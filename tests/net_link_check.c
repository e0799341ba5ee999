/*
 * Links every object of server/net (rn_net, whole archive) with only rn_common and the
 * outside libraries (server/net/CMakeLists.txt): if the network side called into the
 * materializer or the server core, this program would not link. Run by tests/layering.sh.
 */
#include <stdio.h>

int main(void)
{
	puts("rn_net links alone");
	return 0;
}
