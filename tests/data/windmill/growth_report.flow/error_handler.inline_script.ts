// Called with the failing step's error; the flow still ends failed.
export async function main(message: string, name: string, step_id: string) {
  console.log(`step ${step_id} failed: ${name}: ${message}`);
  return { notified: true, step_id };
}
