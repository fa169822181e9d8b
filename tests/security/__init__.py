"""The attack suite: hostile input, forged requests and probing, each refused cleanly with nothing stored."""
