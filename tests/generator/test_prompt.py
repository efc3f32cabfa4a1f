from generator.prompt import parse_prompt


def test_canonical_caption_parses_into_components():
    p = parse_prompt("a white ball moving quickly up at sunset")
    assert p.objects == [{"colour": "white", "shape": "ball"}]
    assert (p.action, p.direction, p.speed, p.scene) == ("moving", "up", "quickly", "at sunset")
    assert p.understood and p.warning() is None


def test_two_objects_and_partial_prompts():
    p = parse_prompt("a yellow ball and a purple square colliding at sunset")
    assert [o["shape"] for o in p.objects] == ["ball", "square"] and p.action == "colliding"
    p = parse_prompt("something falling in a forest")
    assert p.objects == [] and p.action == "falling" and p.scene == "in a forest"


def test_synonyms_map_to_world_words():
    p = parse_prompt("A fast blue box going left in the forest")
    assert p.objects == [{"colour": "blue", "shape": "square"}]
    assert (p.direction, p.speed, p.scene) == ("left", "quickly", "in a forest")


def test_unknown_words_are_named_in_the_warning():
    p = parse_prompt("a dragon over a castle")
    assert not p.understood and p.unknown_words == ["dragon", "over", "castle"]
    assert "'dragon'" in p.warning() and "synthetic world" in p.warning()
