/** Redis key layout of the command bus (docs/tunnel.md, "Command bus"). Every key starts with the app prefix. */
export const busKeys = (prefix: string) => ({
  /** instanceId of the connector instance holding the agent's tunnel; TTL refreshed by that instance. */
  agentOwner: (agentId: string) => `${prefix}:owner:agent:${agentId}`,
  /** Requests for one connector instance (a stream with one consumer group). */
  requests: (instanceId: string) => `${prefix}:bus:req:${instanceId}`,
  /** Replies for one dispatcher (a stream read by that dispatcher only). */
  replies: (dispatcherId: string) => `${prefix}:bus:reply:${dispatcherId}`,
});

export const CONSUMER_GROUP = 'connector';
