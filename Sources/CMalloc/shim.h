// glibc's allocator controls (mallopt, malloc_trim, mallinfo2), which the Glibc module leaves out.
#include <malloc.h>

// Bytes the allocator has handed out and not had back: in its heaps and in mappings of their own.
// (Swift reads `mallinfo2()` as the zero initializer of the struct of the same name.)
static inline size_t fletcher_malloc_in_use_bytes(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
