from collections import Counter


def main(members: list):
    return dict(Counter(member["role"] for member in members))
