import * as wmill from "windmill-client";

export async function main(region: string, counts: { previous: number; current: number }) {
  const growth = ((counts.current - counts.previous) / counts.previous) * 100;
  return { region, growth: Math.round(growth * 10) / 10 };
}
