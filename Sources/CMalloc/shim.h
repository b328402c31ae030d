// glibc's allocator controls (mallopt, malloc_trim, mallinfo2), which the Glibc module leaves out.
#include <malloc.h>

// Bytes held free inside the allocator's heaps. (Swift reads `mallinfo2()` as the zero initializer
// of the struct of the same name.)
static inline size_t fletcher_malloc_free_bytes(void) { return mallinfo2().fordblks; }
