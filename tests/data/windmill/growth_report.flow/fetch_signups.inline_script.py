import wmill
from datetime import datetime


def main(api: dict, since: str, regions: list[str] = ["eu", "us"]):
    start = datetime.fromisoformat(since.replace("Z", "+00:00"))
    counts = {}
    for region in regions:
        # Stand-in for a call to api["url"]: deterministic numbers per region.
        counts[region] = {"previous": 100 + len(region), "current": 100 + 3 * len(region)}
    return {"since": start.isoformat(), "regions": regions, "counts": counts}
