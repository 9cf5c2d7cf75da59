import type { PartitionAssigner } from 'kafkajs';
import kafkajs from 'kafkajs';

// kafkajs is CommonJS: Node's ESM loader sees only its default export.
const { AssignerProtocol } = kafkajs;

export const PAUSE_AWARE_ASSIGNER = 'SluicePauseAware';

/**
 * A partition assigner for Sluice's consumer groups. Each member tells, when it joins, whether it is
 * paused (the kill switch tripped); partitions go round-robin to the members that subscribe to their
 * topic and are not paused, and to paused ones only when no active member subscribes. So a paused
 * consumer hands its partitions to active ones at the next rebalance instead of sitting on them.
 * Members that subscribe to different topics only get partitions of their own topics.
 */
export function pauseAwareAssigner(isPaused: () => boolean): PartitionAssigner {
  return ({ cluster }) => ({
    name: PAUSE_AWARE_ASSIGNER,
    version: 1,
    async assign({ members, topics }) {
      const decoded = members
        .map((m) => {
          const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
          return {
            memberId: m.memberId,
            topics: new Set(meta?.topics ?? []),
            paused: meta?.userData?.[0] === 1,
          };
        })
        .sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
      const assignment = new Map<string, Record<string, number[]>>(decoded.map((m) => [m.memberId, {}]));
      let turn = 0;
      for (const topic of [...topics].sort()) {
        const subscribed = decoded.filter((m) => m.topics.has(topic));
        const active = subscribed.filter((m) => !m.paused);
        const pool = active.length > 0 ? active : subscribed;
        if (pool.length === 0) continue;
        const partitions = cluster
          .findTopicPartitionMetadata(topic)
          .map((p) => p.partitionId)
          .sort((a, b) => a - b);
        for (const partition of partitions) {
          const member = pool[turn++ % pool.length] as (typeof pool)[number];
          const forMember = assignment.get(member.memberId) as Record<string, number[]>;
          forMember[topic] ??= [];
          forMember[topic].push(partition);
        }
      }
      return [...assignment].map(([memberId, topicPartitions]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: topicPartitions,
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: PAUSE_AWARE_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from([isPaused() ? 1 : 0]),
        }),
      };
    },
  });
}
