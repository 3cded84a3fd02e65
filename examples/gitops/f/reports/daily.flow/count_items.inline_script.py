def main(items: list):
    return sum(1 for item in items if item.get("open"))
