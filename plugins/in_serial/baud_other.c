/*
 * Non-standard baud rates through Linux termios2 (TCGETS2/TCSETS2 with BOTHER); see
 * in_serial_int.h. Includes <asm/termbits.h>, and therefore must not include <termios.h>.
 */
#include <asm/termbits.h>
#include <errno.h>
#include <sys/ioctl.h>

#include "in_serial_int.h"

int rn_in_serial__set_baud_other(int fd, unsigned baud, unsigned *got)
{
	struct termios2 t;
	if (ioctl(fd, TCGETS2, &t))
		return -errno;
	t.c_cflag &= ~(tcflag_t)(CBAUD | (CBAUD << IBSHIFT));
	t.c_cflag |= BOTHER | (BOTHER << IBSHIFT);
	t.c_ispeed = baud;
	t.c_ospeed = baud;
	if (ioctl(fd, TCSETS2, &t))
		return -errno;
	if (ioctl(fd, TCGETS2, &t))
		return -errno;
	*got = t.c_ospeed;
	return 0;
}
