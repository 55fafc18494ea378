// A binary min-heap of node indexes ordered by (k1, k2, k3, index): the candidate nodes of one
// request. Only the node just placed on changes during a request, so each placement costs one
// sift instead of a scan, and the answer is the same as scanning every candidate.

export class NodeHeap {
  private heap = new Int32Array(0);
  k1 = new Float64Array(0);
  k2 = new Float64Array(0);
  k3 = new Float64Array(0);
  size = 0;

  /** Empties the heap, sized for node indexes below n. */
  reset(n: number): void {
    if (this.k1.length < n) {
      const cap = Math.max(n, this.k1.length * 2);
      this.heap = new Int32Array(cap);
      this.k1 = new Float64Array(cap);
      this.k2 = new Float64Array(cap);
      this.k3 = new Float64Array(cap);
    }
    this.size = 0;
  }

  /** Adds without ordering; call heapify before top. */
  add(i: number): void {
    this.heap[this.size++] = i;
  }

  heapify(): void {
    for (let k = (this.size >> 1) - 1; k >= 0; k--) this.siftDown(k);
  }

  top(): number {
    return this.heap[0]!;
  }

  pop(): void {
    this.heap[0] = this.heap[--this.size]!;
    if (this.size > 0) this.siftDown(0);
  }

  /** Restores order after the keys of the node at position `pos` grew (0 = the top). */
  siftDown(pos: number): void {
    const h = this.heap;
    const n = this.size;
    const item = h[pos]!;
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && this.less(h[child + 1]!, h[child]!)) child++;
      if (!this.less(h[child]!, item)) break;
      h[pos] = h[child]!;
      pos = child;
    }
    h[pos] = item;
  }

  less(a: number, b: number): boolean {
    const k1 = this.k1;
    if (k1[a] !== k1[b]) return k1[a]! < k1[b]!;
    const k2 = this.k2;
    if (k2[a] !== k2[b]) return k2[a]! < k2[b]!;
    const k3 = this.k3;
    if (k3[a] !== k3[b]) return k3[a]! < k3[b]!;
    return a < b;
  }
}
