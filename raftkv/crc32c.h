/*
 * crc32c.h — CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78).
 *
 * Used to checksum log entries in the store and frames on the wire.  The
 * SSE4.2 crc32 instruction is used when the CPU has it (checked once at run
 * time); otherwise a table-driven software version gives the same result.
 *
 * Chaining: crc32c(crc32c(0, a, la), b, lb) == crc32c(0, a||b, la+lb).
 * crc32c(0, "123456789", 9) == 0xE3069283 (the standard check value).
 */
#ifndef HSTORE_CRC32C_H
#define HSTORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable software path, always available; the same result as crc32c().
 * Exposed so tests can check the hardware path against it. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
