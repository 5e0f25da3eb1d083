import { fmt, median, mibPerS, pairRatios, parseOpensslSpeed, percentile, summarize } from "../../bench/stats";

describe("bench statistics helpers (no timing)", () => {
  test("median and percentiles interpolate between ranks", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5], 0)).toBe(1);
    expect(percentile([1, 2, 3, 4, 5], 100)).toBe(5);
    expect(percentile([10, 20], 99)).toBeCloseTo(19.9);
    expect(Number.isNaN(median([]))).toBe(true);
    expect(median([NaN, 5, Infinity])).toBe(5);
  });

  test("summarize gives median, range and relative spread", () => {
    expect(summarize([2, 4, 3])).toEqual({ n: 3, median: 3, min: 2, max: 4, spread: 2 / 3 });
    expect(summarize([]).n).toBe(0);
  });

  test("pair ratios skip missing or zero denominators", () => {
    expect(pairRatios([1, 2, 3], [2, 0, 6])).toEqual([0.5, 0.5]);
    expect(pairRatios([1, NaN], [1, 1])).toEqual([1]);
  });

  test("throughput in MiB/s", () => {
    expect(mibPerS(1048576 * 100, 1000)).toBe(100);
    expect(Number.isNaN(mibPerS(1, 0))).toBe(true);
  });

  test("openssl speed output is parsed in bytes per second", () => {
    const out = [
      "Doing AES-256-GCM for 3s on 65536 size blocks: 196071 AES-256-GCM's in 3.00s",
      "version: 3.0.19",
      "The 'numbers' are in 1000s of bytes per second processed.",
      "type          65536 bytes",
      "AES-256-GCM    4283564.03k",
    ].join("\n");
    expect(parseOpensslSpeed(out)).toBeCloseTo(4283564030);
    expect(parseOpensslSpeed("type 16 bytes 64 bytes\naes-256-gcm  1000.00k  2000.50k")).toBeCloseTo(2000500);
    expect(parseOpensslSpeed("nothing here")).toBeNull();
  });

  test("display rounding", () => {
    expect(fmt(null)).toBe("-");
    expect(fmt(1234.6)).toBe("1235");
    expect(fmt(0.12345)).toBe("0.123");
    expect(fmt(12.345)).toBe("12.3");
  });
});
