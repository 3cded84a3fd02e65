export async function main(team: string, counts: Record<string, number>) {
  const parts = Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([role, n]) => `${n} ${role}${n === 1 ? "" : "s"}`);
  return `${team}: ${parts.join(", ")}`;
}
