import { BUCKETS, emptyBuckets, isComparedBucket, netOf, type SettlementProtocol, UNCOMPARED_BUCKETS } from './totals';

describe('the compared buckets: one definition for the nets and the counts', () => {
  it('lists as uncompared exactly the buckets no terminal reports (JPAY SBP), which netOf leaves out', () => {
    expect(UNCOMPARED_BUCKETS).toEqual(['JPAY:sbp_payment', 'JPAY:sbp_refund']);
    for (const protocol of Object.keys(BUCKETS) as SettlementProtocol[]) {
      for (const bucket of Object.keys(BUCKETS[protocol])) {
        const buckets = { ...emptyBuckets(protocol), [bucket]: { count: 1, amount: 100 } };
        // A bucket moves the net exactly when it is compared (and so counted).
        expect([protocol, bucket, netOf(protocol, buckets) !== 0]).toEqual([protocol, bucket, isComparedBucket(protocol, bucket)]);
        expect(UNCOMPARED_BUCKETS.includes(`${protocol}:${bucket}`)).toBe(!isComparedBucket(protocol, bucket));
      }
    }
  });
});
