/*
 * The library's version at run time.  The string is the header's
 * IOP_VERSION_STRING, a literal: static storage, the same pointer on every
 * call and thread.  configure stops when the header's IOP_VERSION_* differ
 * from AC_INIT's version, and tests/test-version checks all three again.
 */
#include "iopool-int.h"

const char *iop_version(void)
{
	return IOP_VERSION_STRING;
}
