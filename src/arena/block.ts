/**
 * A block: a range of an arena's shared memory held by this process. Views over it are created lazily and
 * never copy.
 */
import '../dispose.js';
import { UNIT } from './layout.js';
import type { Slab } from './slab.js';

/** What a Block needs from its arena (implemented by the arena core). */
export interface BlockOwner {
  releaseBlock(block: Block): void;
  lendBlock(block: Block): unknown;
}

type TypedArrayCtor<T> = {
  new (buffer: SharedArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
};

/**
 * A block of shared memory returned by `Arena.alloc()` or `Arena.borrow()`. It stays valid until released
 * (`release()` / `Arena.free()`), or until its arena is closed. Views outlive neither in meaning: after a
 * release the memory may be handed to someone else.
 */
export class Block {
  /** @internal */ _owner: BlockOwner;
  /** @internal Slab of a small block, null for a large block. */
  _slab: Slab | null;
  /** @internal Block index in the slab, or the first unit of a large block. */
  _index: number;
  /** @internal False once released. */
  _held: boolean;
  /** @internal */ _bytes: Uint8Array | undefined;
  /** @internal Capacity of a large block (0 for a small one). */
  _cap: number;
  /** The SharedArrayBuffer (the whole data segment) the block lives in. */
  readonly buffer: SharedArrayBuffer;
  /** Byte offset of the block in {@link buffer}. */
  readonly offset: number;
  /** Length in bytes (as requested from `alloc`, or as carried by the handle for a borrowed block). */
  readonly length: number;
  /** Generation of the block: changes every time the memory is allocated anew. */
  readonly generation: number;

  /** @internal */
  constructor(
    owner: BlockOwner,
    slab: Slab | null,
    index: number,
    buffer: SharedArrayBuffer,
    offset: number,
    length: number,
    generation: number,
  ) {
    this._owner = owner;
    this._slab = slab;
    this._index = index;
    this._held = true;
    this._bytes = undefined;
    this._cap = 0;
    this.buffer = buffer;
    this.offset = offset;
    this.length = length;
    this.generation = generation;
  }

  /** Usable bytes: the size class for a small block, whole units for a large one (≥ `length`). */
  get capacity(): number {
    const slab = this._slab;
    return slab !== null ? slab.size : this._cap;
  }

  /** Offset of the block in the arena's global address space (what handles carry). */
  get arenaOffset(): number {
    const slab = this._slab;
    if (slab !== null) return slab.globalData + this._index * slab.size;
    return this._index * UNIT;
  }

  /** True until the block is released (or its arena closed). */
  get held(): boolean {
    return this._held;
  }

  /** The block's bytes (`length` of them), a view over shared memory. Created once, then cached. */
  get bytes(): Uint8Array {
    let b = this._bytes;
    if (b === undefined) b = this._bytes = new Uint8Array(this.buffer, this.offset, this.length);
    return b;
  }

  /** A DataView over the block's bytes. */
  dataView(): DataView {
    return new DataView(this.buffer, this.offset, this.length);
  }

  private view<T>(ctor: TypedArrayCtor<T>): T {
    const size = ctor.BYTES_PER_ELEMENT;
    if (this.offset % size !== 0) {
      throw new RangeError(`block at offset ${this.offset} is not ${size}-byte aligned for ${ctor.name}`);
    }
    return new ctor(this.buffer, this.offset, Math.floor(this.length / size));
  }

  /** Int8Array over the block. */
  int8(): Int8Array {
    return this.view(Int8Array);
  }
  /** Uint8Array over the block (a new view; {@link bytes} is the cached one). */
  uint8(): Uint8Array {
    return this.view(Uint8Array);
  }
  /** Int16Array over `floor(length / 2)` elements; RangeError when the block is not 2-byte aligned. */
  int16(): Int16Array {
    return this.view(Int16Array);
  }
  /** Uint16Array over `floor(length / 2)` elements; RangeError when the block is not 2-byte aligned. */
  uint16(): Uint16Array {
    return this.view(Uint16Array);
  }
  /** Int32Array over `floor(length / 4)` elements (usable with Atomics across processes). */
  int32(): Int32Array {
    return this.view(Int32Array);
  }
  /** Uint32Array over `floor(length / 4)` elements. */
  uint32(): Uint32Array {
    return this.view(Uint32Array);
  }
  /** Float32Array over `floor(length / 4)` elements. */
  float32(): Float32Array {
    return this.view(Float32Array);
  }
  /** Float64Array over `floor(length / 8)` elements; RangeError when the block is not 8-byte aligned. */
  float64(): Float64Array {
    return this.view(Float64Array);
  }
  /** BigInt64Array over `floor(length / 8)` elements. */
  bigInt64(): BigInt64Array {
    return this.view(BigInt64Array);
  }
  /** BigUint64Array over `floor(length / 8)` elements. */
  bigUint64(): BigUint64Array {
    return this.view(BigUint64Array);
  }

  /** Lets go of the block (same as `arena.free(block)`). Throws `ESTALEHANDLE` when already released. */
  release(): void {
    this._owner.releaseBlock(this);
  }

  /** `using block = arena.alloc(n)`: released at the end of the scope (unless released already). */
  [Symbol.dispose](): void {
    if (this._held) this.release();
  }
}
