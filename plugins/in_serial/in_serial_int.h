/*
 * Internals shared by in_serial's files. The Linux termios2 interface (<asm/termbits.h>)
 * cannot share a translation unit with <termios.h> — both define struct termios and the
 * B* constants — so the one call that needs it lives alone in baud_other.c.
 */
#ifndef RN_IN_SERIAL_INT_H
#define RN_IN_SERIAL_INT_H

/* Sets input and output speed of the open tty `fd` to `baud` bits/s with termios2 BOTHER
 * (any integer rate; the driver may round it). The rest of the settings are left as they
 * are. 0 and *got = the rate the driver reports back, or the negated errno of the failing
 * ioctl (-ENOTTY, -EINVAL ...). */
int rn_in_serial__set_baud_other(int fd, unsigned baud, unsigned *got);

#endif
