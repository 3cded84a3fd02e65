import * as wmill from "npm:windmill-client@1";

export async function main(company: string, plan: string = "starter") {
  const id = company.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return { id, company, plan };
}
