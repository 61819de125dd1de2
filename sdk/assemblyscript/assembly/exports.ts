// The ABI v2 exports of a moat plugin (sdk/ABI.md). AssemblyScript only exports what the
// entry file exports, so a plugin's entry file re-exports these:
//
//   export * from "@moat/sdk/assembly/exports";
//
// Both hooks are exported; moat_phases tells the host which ones have a
// handler registered, so a plugin that only calls handleInput is only run
// in the input phase. A hook called without a handler rejects (fail closed).

import { abiAlloc, abiCall, abiPhases } from "./index";

/** Declares that the module speaks moat's plugin ABI v2 (binary request and verdict). */
export function moat_abi_v2(): void {}

/** The phases with a handler: 1 input, 2 output (both when none, so calls fail closed). */
export function moat_phases(): i32 {
  return abiPhases();
}

/** Returns a pointer to size writable bytes for the request, 0 on failure. */
export function moat_alloc(size: i32): i32 {
  return abiAlloc(size);
}

/** The input-phase hook: 0 to allow, else (ptr << 32) | len of a verdict. */
export function moat_input(ptr: i32, len: i32): i64 {
  return abiCall(ptr, len, false);
}

/** The output-phase hook: 0 to allow, else (ptr << 32) | len of a verdict. */
export function moat_output(ptr: i32, len: i32): i64 {
  return abiCall(ptr, len, true);
}
