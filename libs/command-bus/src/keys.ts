/**
 * Redis key layout of the command bus (docs/tunnel.md, "Command bus"). Every key starts with the app prefix.
 *
 * Redis Cluster: no key carries a hash tag, on purpose. Every command, script and MULTI of the bus touches one
 * key (the consumer answers with two MULTIs, one per stream), so each key hashes by its own name: owner keys
 * spread over all masters by agent, each connector's request stream and each dispatcher's reply stream land
 * wherever their ids hash, and no master carries the whole bus. A shared tag such as `{payorch}` would put
 * every bus key, and all of the bus's traffic, on one master.
 */
export const busKeys = (prefix: string) => ({
  /** instanceId of the connector instance holding the agent's tunnel; TTL refreshed by that instance. */
  agentOwner: (agentId: string) => `${prefix}:owner:agent:${agentId}`,
  /** Requests for one connector instance (a stream with one consumer group). */
  requests: (instanceId: string) => `${prefix}:bus:req:${instanceId}`,
  /** Replies for one dispatcher (a stream read by that dispatcher only). */
  replies: (dispatcherId: string) => `${prefix}:bus:reply:${dispatcherId}`,
});

export const CONSUMER_GROUP = 'connector';
